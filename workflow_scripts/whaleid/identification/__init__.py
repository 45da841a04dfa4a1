"""The identification contract every method keeps, and the calibration of its scores.

- `search`: the two searches every method answers (validation photos against the fit photos,
  test photos against all of train and the photos a person identified).
- `candidates`: the known individuals of a catalogue, and each query's best four.
- `answers`: from candidates to five answers: duplicates first, `new_whale` below a threshold
  chosen on validation.
- `calibration`: scores made probabilities, and how reliable they are.

numpy, pandas and scikit-learn only: no TensorFlow.
"""
