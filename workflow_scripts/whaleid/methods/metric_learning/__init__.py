"""The metric-learning method: an embedding in which photos of one individual lie close together,
and identification by the nearest individuals of a catalogue.

- `model` (TensorFlow): the embedding network, its sub-center ArcFace training, and the
  embedding of every photo of an array.
- `additions` (TensorFlow): labelled photos added to the test catalogue without retraining.
- `retrieval` (numpy only): each query's individuals by cosine similarity, and the method's
  identification of the validation and test photos.

Nothing is imported here, so that `retrieval` loads without TensorFlow.
"""
