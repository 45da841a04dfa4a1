"""What people look at and decide: the evidence for each answer, the pages, the decisions.

- `evidence`: what speaks for each of a method's answers (its photo and score), by method.
- `pictures`: thumbnails and match pictures as data URIs.
- `html`: what both pages share: their templates and assets, escaping, how scores are written.
- `gallery`: the candidate gallery's best hits and worst misses, for the report.
- `review_page`: the page a person reviews the test answers on, by keyboard.
- `decisions`: the decisions people exported, read back, and the catalogue they grow.
- `wildbook`: the survey's photos and decisions as Wildbook's bulk-import spreadsheet.

The pages' markup, style and script are files in `templates/`, inlined at render time.
"""
