"""Video data: sources/ -> (path, label), PyAV decoding, clip planning and sampling, the LightningDataModules."""
