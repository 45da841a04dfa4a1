"""The identification contract every method keeps, and the calibration of its scores.

- `search`: the two searches every method answers (validation photos against the fit photos,
  test photos against all of train and the photos a person identified).
- `candidates`: the known individuals of a catalogue, and each query's best four.
- `answers`: from candidates to five answers: duplicates first, `new_whale` below a threshold
  chosen on validation.
- `calibration`: scores made probabilities, and how reliable they are.
- `fold_threshold`: the new_whale threshold chosen on out-of-fold answers to the fit photos.
- `auto_accept`: the score above which rank-1 answers are right as often as asked, chosen on the
  local method's out-of-fold answers to the fit photos or on validation: the review page
  accepts them, self-training adds them to the catalogue.

numpy, pandas and scikit-learn only: no TensorFlow.
"""
