"""`--model.lr auto`: Lightning's learning-rate range test before fitting, and the rule that picks the rate.

The test trains for `steps` steps from the initial weights with the rate growing exponentially from
MIN_LR to MAX_LR (every parameter group at that rate), records the smoothed loss, then restores the
weights. The rate chosen is where the loss falls fastest (Lightning's suggestion), but at most a
tenth of the rate where the loss is lowest (fast.ai's margin: past the minimum it diverges).
When the loss falls by less than MIN_FALL anywhere (a model trained from scratch often shows no
progress within the search's steps, and the steepest point is then noise), the rate is a tenth of
the first one at which the loss rises RISE above its start (Smith's rule: below divergence).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from vidclf.errors import VidclfError
from vidclf.io.files import save_in_config
from vidclf.ranges import store_plain

MIN_LR, MAX_LR = 1e-6, 1.0
SKIP = 10  # the first points of the smoothed curve are the smoother's warm-up, not the model's
MIN_FALL, RISE = 0.05, 0.2  # a fall smaller than 5% is not learning; 20% above the start is diverging


def pick_lr(lrs: list[float], losses: list[float]) -> tuple[float, str]:
    """(rate, the rule that gave it) by the rules above, from the test's (rate, smoothed loss) points,
    within [MIN_LR, MAX_LR]: the steepest descent as Lightning computes it (the loss's gradient over
    the rate, the first SKIP points and the last left out), capped at a tenth of the lowest-loss rate;
    with no clear fall, a tenth of the rate where the loss starts to diverge."""
    points = [(lr, loss) for lr, loss in list(zip(lrs, losses))[SKIP:-1] if math.isfinite(loss)]
    if len(points) < 3:
        raise VidclfError(f"the learning-rate search stopped after {len(lrs)} steps (the loss diverged at once?), "
                          f"too few to pick a rate; give --model.lr a number (e.g. 1e-3), or more --lr_find_steps")
    rates, values = torch.tensor([p[0] for p in points]), torch.tensor([p[1] for p in points])
    start = float(values[0])
    if float(values.min()) > start * (1 - MIN_FALL):
        above = (values > start * (1 + RISE)).nonzero()
        if not len(above):
            raise VidclfError(f"the training loss neither fell nor diverged at any rate from {rates[0]:.2g} to "
                              f"{rates[-1]:.2g} in {len(lrs)} steps, so the search cannot tell a rate; give --model.lr "
                              f"a number (e.g. 1e-3), or more --lr_find_steps")
        return max(MIN_LR, float(rates[int(above[0])]) / 10), (f"the loss fell less than {MIN_FALL:.0%} at any rate, so a tenth of the "
                                        f"rate where it rose {RISE:.0%} above its start")
    slope = torch.gradient(values, spacing=[rates])[0]
    steepest = int(torch.argmin(slope))
    lowest = float(rates[int(torch.argmin(values))])
    return max(MIN_LR, min(float(rates[steepest]), lowest / 10)), \
        "steepest loss descent, at most a tenth of the lowest-loss rate"


def find_lr(trainer, model, datamodule, steps: int) -> float:
    """Run the range test, set model.hparams.lr to the pick, write RUN/lr_find.png and the value into
    RUN/config.yaml (a rerun of that config is exact); returns the rate."""
    from pytorch_lightning.tuner import Tuner

    model.hparams.lr = MIN_LR  # the optimizer is built before the test sets its own rates
    print(f"vidclf: searching the learning rate: {steps} steps from {MIN_LR:g} to {MAX_LR:g}", file=sys.stderr)
    max_epochs = trainer.fit_loop.max_epochs
    trainer.fit_loop.max_epochs = -1  # the search's steps may span more epochs than the run has
    try:
        finder = Tuner(trainer).lr_find(model, datamodule=datamodule, min_lr=MIN_LR, max_lr=MAX_LR,
                                        num_training=steps, update_attr=False)
    finally:
        trainer.fit_loop.max_epochs = max_epochs
    lrs, losses = finder.results.get("lr", []), finder.results.get("loss", [])
    run = Path(trainer.log_dir or ".")  # a collective call under DDP: every process asks
    lr, rule = None, ""
    try:
        lr, rule = pick_lr(lrs, losses)
    except VidclfError as err:
        raise VidclfError(f"{err} (the curve: {run / 'lr_find.png'})") from None
    finally:  # the curve is drawn also when no rate can be picked: it shows why
        if trainer.is_global_zero:
            _plot(lrs, losses, lr, run / "lr_find.png")
    model.hparams.lr = lr
    store_plain(model)  # the value logged in hparams.yaml and saved in checkpoints
    if trainer.is_global_zero:
        save_in_config(run, "model", "lr", lr)
    print(f"vidclf: learning rate {lr:.3g} ({rule}); "
          f"curve -> {run / 'lr_find.png'}, value saved in {run / 'config.yaml'} and the checkpoints", file=sys.stderr)
    return lr


def _plot(lrs: list[float], losses: list[float], chosen: float | None, path: Path) -> None:
    from vidclf.io.figures import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    ax.plot(lrs, losses)
    if chosen is not None:
        ax.axvline(chosen, color="red", linestyle="--", label=f"chosen {chosen:.3g}")
        ax.legend()
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title(f"learning-rate range test, {len(lrs)} steps")
    fig.tight_layout()
    save_figure(fig, path)
