"""The local method: keypoint matching, as photo-identification software for patterned animals
has long done it (Wildbook's HotSpotter). Works from a single catalogue photo; its verifier
learns from the labelled photos, no network is trained. Its steps, each a module:

- `keypoints` (OpenCV): each photo's SIFT keypoints and descriptors, cached per split.
- `geometry` (OpenCV): one pair's descriptor matches by Lowe's ratio, RANSAC's transform and
  what its inliers cover.
- `pairs` (pandas): what each verified pair measures, and its worth beside the query's others.
- `catalogue` (faiss): one descriptor index over the catalogue, a shortlist by voting, the
  geometric check of the shortlisted photos.
- `foreground` (scikit-learn): how likely each keypoint lies on the animal, learned from the
  fit photos.
- `verifier` (scikit-learn): P(same individual) of a verified pair from its statistics, learned
  from the fit photos and calibrated.
- `pooling`: an individual's score from its verified photos, and a query's four best.
- `identify`: the method's identification of the validation and test photos.
- `recall` (pandas): how often the shortlist holds the right individual, by its catalogue photos.
"""
