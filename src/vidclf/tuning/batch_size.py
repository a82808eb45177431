"""`--data.batch_size auto`: the largest training batch that fits in GPU memory, by Lightning's search.

The search (Tuner.scale_batch_size, binsearch mode) trains a few steps at batch 2, 4, 8, ... until
one runs out of memory, then bisects between the last size that fitted and the first that did not,
and keeps 5% below the result (Lightning's margin: memory fragments as training goes on). The
weights are restored afterwards. The found size replaces `auto` in RUN/config.yaml, the data
module's hyper-parameters and so the checkpoints: a rerun or a resumed run does not search again.
"""

from __future__ import annotations

import sys
from typing import Optional

from vidclf.errors import VidclfError
from vidclf.io.files import save_in_config
from vidclf.ranges import store_plain


def find_batch_size(trainer, model, datamodule, largest: Optional[int]) -> int:
    """Search, set datamodule.hparams.batch_size and RUN/config.yaml's data.batch_size; returns the size."""
    from pytorch_lightning.tuner import Tuner

    if trainer.world_size > 1:
        raise VidclfError("--data.batch_size auto searches in one process: run it once with --trainer.devices 1, "
                          "then pass the size it prints as --data.batch_size N (the batch of each process)")
    gpu = type(trainer.accelerator).__name__ == "CUDAAccelerator"
    if not gpu and largest is None:
        raise VidclfError("--data.batch_size auto finds the largest batch that fits in GPU memory; on the CPU, running "
                          "out of memory stops the machine, not the search: give a number (e.g. --data.batch_size 8), "
                          "or cap the search with --batch_size_max N")
    cap = largest or 8192
    print(f"vidclf: searching the largest batch that fits{'' if gpu else ' (CPU)'}, up to {cap}", file=sys.stderr)
    datamodule.hparams.batch_size = 2  # the search's first size (and the search's own fit call sees no `auto`)
    max_epochs = trainer.fit_loop.max_epochs
    trainer.fit_loop.max_epochs = -1  # trial steps may run past the run's last epoch
    try:
        size = Tuner(trainer).scale_batch_size(model, datamodule=datamodule, mode="binsearch", init_val=2,
                                               max_val=cap, steps_per_trial=3)
    finally:
        trainer.fit_loop.max_epochs = max_epochs
    if not size:
        raise VidclfError("--data.batch_size auto: not even a batch of 2 fits in memory; use a smaller backbone, "
                          "fewer --data.frames or a smaller --data.crop, or --trainer.precision bf16-mixed")
    size = int(size)
    datamodule.hparams.batch_size = size
    store_plain(datamodule)  # the value saved in checkpoints
    run = trainer.log_dir  # a collective call under DDP: every process asks
    if trainer.is_global_zero:
        save_in_config(run, "data", "batch_size", size)
    print(f"vidclf: batch size {size} (per process); saved in {run}/config.yaml and the checkpoints", file=sys.stderr)
    return size
