"""The local method: keypoint matching, as photo-identification software for patterned animals
has long done it (Wildbook's HotSpotter). No training; works from a single catalogue photo.

- `keypoints` (OpenCV): each photo's SIFT keypoints and descriptors, cached per split.
- `matching` (OpenCV, faiss): a shortlist of individuals by descriptor voting, a geometric check
  of each, and the method's identification of the validation and test photos.
"""
