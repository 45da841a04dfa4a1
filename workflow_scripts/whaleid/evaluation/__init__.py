"""How answers are written and scored: MAP@5 (`metrics`), Kaggle submissions (`submission`),
every method's scores and their comparison (`scoring`, `summary`). pandas only.
"""
