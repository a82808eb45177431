"""Third-party warnings and log lines that say nothing about the user's run, hidden in every process."""

from __future__ import annotations

import logging
import warnings


def quiet() -> None:
    """Hide third-party chatter that says nothing about the user's run."""
    for message in (".*torch.jit.script. is deprecated", ".*dirpath has changed from", ".*treespec, LeafSpec",
                    ".*does not have many workers", ".*smaller than the logging interval",
                    ".*Experiment logs directory .* exists and is not empty",
                    ".*Grad strides do not match bucket view strides",  # DDP: 1x1x1 conv grads, channels_last
                    ".*both batch and unbatch methods implemented",  # serve with --max_batch_size 1
                    ".*weights_only. was not set, defaulting",  # the learning-rate search restoring its start
                    ".*callbacks used to create the checkpoint need to be provided",  # evaluating a checkpoint
                    ".*Total length of .list. across ranks is zero",  # fit without validation videos
                    ".*.training_step. returned .None."):  # a kNN head, or a batch whose videos all failed (reported)
        warnings.filterwarnings("ignore", message=message)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: not any(w in record.getMessage() for w in ("litlogger", "already configured with model summary")))

