"""The photos before any model: a catalogue kept as a folder per individual read as the
playground layout (`folders`), ingest's checks and manifest (`ingest`), decoding and the
published preprocessing (`images`, `preprocess`), the photos' capture times and positions from
EXIF (`photo_metadata`) and the encounters found from them (`encounters`, linked photos grouped
by `links`), the local validation split (`validation_split`) and duplicates by content and pHash
(`duplicates`). No TensorFlow.
"""
