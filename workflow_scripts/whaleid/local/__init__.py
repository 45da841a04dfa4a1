"""The local method: keypoint matching, as photo-identification software for patterned animals
has long done it (Wildbook's HotSpotter). Works from a single catalogue photo; its verifier
learns from the labelled photos, no network is trained.

- `keypoints` (OpenCV): each photo's SIFT keypoints and descriptors, cached per split.
- `matching` (OpenCV, faiss): a shortlist of individuals by descriptor voting, a geometric check
  of each with its match statistics, and the method's identification of the validation and test
  photos.
- `verifier` (scikit-learn): P(same individual) of a verified pair from its statistics, learned
  from the fit photos and calibrated.
- `recall` (pandas): how often the shortlist holds the right individual, by its catalogue photos.
"""
