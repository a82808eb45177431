"""`vidclf select`: the unlabelled videos most worth labelling next. Each video of the pool is scored
for uncertainty (single-label: 1 - the margin between its two most probable classes, or the entropy;
multi-label: how close its least certain class is to that class's threshold); the `budget` are then
picked among the most uncertain by k-center greedy on their embeddings (the features `vidclf embed`
writes), so that they are not near-copies of each other. Written as pre-annotated Label Studio tasks,
with the scores that chose them in a CSV beside."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch

from vidclf.commands.predict import gathered, run_with
from vidclf.data.segments import split
from vidclf.errors import VidclfError
from vidclf.io.files import check_output, write_json, write_rows

SHORTLIST = 4  # k-center greedy chooses among the budget x this most uncertain videos


def select(trainer, model, datamodule, run: Callable[[], object], budget: int, output: str, strategy: str,
           labelstudio_root: Optional[str], overwrite: bool) -> None:
    if Path(output).suffix.lower() != ".json":
        raise VidclfError(f"--output {output}: select writes Label Studio tasks: name it next.json")
    reasons = str(Path(output).with_suffix(".csv"))
    for path in (output, reasons):
        check_output(path, overwrite)
    known = {str(Path(path).resolve()) for path in datamodule.train_files()}  # labelled: never proposed again
    run_with(trainer, SelectionWriter(budget, output, reasons, strategy, labelstudio_root, known), run, model, "both")


def uncertainty(probs: torch.Tensor, strategy: str, thresholds: Optional[torch.Tensor]) -> torch.Tensor:
    """(N,) in [0, 1], higher = less sure, for video probabilities (N, K)."""
    if thresholds is not None:  # multi-label: the class nearest its threshold, relative to how far it could be
        room = torch.maximum(thresholds, 1 - thresholds)
        return (1 - (probs - thresholds).abs() / room).amax(-1)
    if strategy == "entropy":
        return -(probs * probs.clamp_min(1e-12).log()).sum(-1) / torch.log(torch.tensor(float(probs.shape[-1])))
    top = probs.topk(2, dim=-1).values
    return 1 - (top[:, 0] - top[:, 1])


def k_center(vectors: torch.Tensor, count: int, order: list[int]) -> tuple[list[int], list[float]]:
    """`count` of `order` (indices into `vectors`, most uncertain first) by k-center greedy on cosine
    distance: the first, then each time the one farthest from all chosen; with each one's distance then."""
    unit = torch.nn.functional.normalize(vectors[order], dim=-1)
    chosen, far = [0], [float("nan")]
    nearest = 1 - unit @ unit[0]
    while len(chosen) < min(count, len(order)):
        pick = int(nearest.argmax())
        chosen.append(pick)
        far.append(float(nearest[pick]))
        nearest = torch.minimum(nearest, 1 - unit @ unit[pick])
    return [order[i] for i in chosen], far


class SelectionWriter(pl.Callback):
    """Collects every pool video's probabilities and embedding, then writes the chosen as tasks."""

    def __init__(self, budget: int, output: str, reasons: str, strategy: str, root: Optional[str], known: set[str]):
        self.budget, self.output, self.reasons, self.strategy = budget, output, reasons, strategy
        self.root, self.known = root, known

    def on_predict_start(self, trainer, pl_module) -> None:
        self.probs: dict[int, torch.Tensor] = {}
        self.vectors: dict[int, torch.Tensor] = {}
        self.failed: dict[int, str] = {}

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        for index, reason in outputs["failed"]:
            self.failed[index] = reason
        if outputs["embeddings"] is not None:
            for row, index in enumerate(outputs["index"].tolist()):
                self.probs[index] = outputs["probs"][row].float().cpu()
                self.vectors[index] = outputs["embeddings"][row].float().mean(0).cpu()

    def on_predict_end(self, trainer, pl_module) -> None:
        from vidclf.commands import labelstudio as ls
        from vidclf.commands.predict import score_fields

        shares = gathered(trainer, (self.probs, self.vectors, self.failed))
        if shares is None:
            return
        for probs, vectors, failed in shares[1:]:
            self.probs.update(probs)
            self.vectors.update(vectors)
            self.failed.update(failed)
        paths = trainer.datamodule.paths("predict")
        pool = [i for i in sorted(self.probs) if str(Path(split(paths[i])[0]).resolve()) not in self.known]
        left_out = len(self.probs) - len(pool)
        if not pool:
            raise VidclfError("select found no unlabelled video that decodes in --data.predict (those in "
                              "--data.train are left out); pass a pool of new videos")
        probs = torch.stack([self.probs[i] for i in pool])
        thresholds = pl_module.active_thresholds().cpu() if pl_module.hparams.multi_label else None
        unsure = uncertainty(probs, self.strategy, thresholds)
        ranked = unsure.argsort(descending=True).tolist()
        shortlist = ranked[:max(self.budget * SHORTLIST, self.budget)]
        chosen, distance = k_center(torch.stack([self.vectors[pool[i]] for i in range(len(pool))]), self.budget, shortlist)
        ckpt = trainer.ckpt_path
        version = f"{Path(ckpt).name}" if ckpt else pl_module.hparams.backbone
        tasks, rows = [], []
        for rank, (i, far) in enumerate(zip(chosen, distance), start=1):
            path = split(paths[pool[i]])[0]
            tasks.append(ls.task(path, self.root, "ok", probs[i], [], pl_module, version, None))
            fields = score_fields(probs[i], pl_module, 3)
            rows.append({"rank": rank, "path": path, "uncertainty": round(float(unsure[i]), 6),
                         "uncertainty_rank": ranked.index(i) + 1,
                         "distance_to_chosen": "" if far != far else round(far, 6),
                         **{k: v for k, v in fields.items() if k not in ("status", "warning")}})
        write_json(self.output, tasks)
        write_rows(self.reasons, rows)
        print(f"vidclf: select: {len(chosen)} of {len(pool)} unlabelled videos ({left_out} already labelled left out, "
              f"{len(self.failed)} that failed to decode) -> {self.output}, why each: {self.reasons}",
              file=sys.stderr)
