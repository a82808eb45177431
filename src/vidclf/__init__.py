"""vidclf: config-driven video classification on PyTorch Lightning."""

from vidclf.data.datamodule import VideoDataModule
from vidclf.models.classifier import VideoClassifier
from vidclf.version import __version__

__all__ = ["VideoClassifier", "VideoDataModule", "__version__"]
