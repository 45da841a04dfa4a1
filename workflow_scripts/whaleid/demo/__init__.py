"""The generated demo dataset: fluke photos in the Kaggle playground's layout.

- `flukes`: each individual's marks (trailing edge, pigmentation, scars) and the fluke drawn.
- `scenes`: a photo of one fluke: pose, sea and sky, or a site's shore; lighting, blur, JPEG.
- `dataset`: the playground's statistics planned and the files written; the contact sheet.
"""
