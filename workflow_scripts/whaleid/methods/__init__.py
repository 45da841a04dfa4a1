"""The identification methods, each answering the searches of `identification` its own way:

- `baseline`: duplicates by pHash, then the commonest individuals.
- `classifier`: the published transfer-learning classifier (TensorFlow).
- `metric_learning/`: an embedding trained with sub-center ArcFace, and retrieval by it.
- `local/`: keypoint matching with a learned foreground and verifier.
- `fused`: the calibrated probabilities of `local` and `metric_learning` combined.
"""
