"""The report's figures and tables (`figures`), drawn with matplotlib without a display."""
