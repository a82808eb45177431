"""Video data: sources -> (path, label), PyAV decoding, clip sampling, the LightningDataModule."""
