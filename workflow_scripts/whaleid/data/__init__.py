"""The photos before any model: ingest's checks and manifest (`ingest`), decoding and the
published preprocessing (`images`, `preprocess`), the local validation split
(`validation_split`) and duplicates by content and pHash (`duplicates`). No TensorFlow.
"""
