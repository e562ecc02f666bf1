"""Data ingestion: hash-verified raw files to canonical uint8 arrays, plus tf.data streams."""
