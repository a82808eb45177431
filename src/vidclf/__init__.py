"""vidclf: config-driven video classification on PyTorch Lightning."""

__version__ = "0.1.0"

from vidclf.data.datamodule import VideoDataModule  # noqa: E402
from vidclf.models.classifier import VideoClassifier  # noqa: E402

__all__ = ["VideoClassifier", "VideoDataModule", "__version__"]
