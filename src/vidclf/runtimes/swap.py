"""The runtime in the torch network's place: `RuntimeNet` takes the network's clips and gives its logits
from another runtime; `UseRuntime` swaps it in when predict, validate or test starts (after Lightning has
loaded the checkpoint's weights) and back when they end."""

from __future__ import annotations

import hashlib
import sys
from typing import Optional

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from vidclf.errors import VidclfError
from vidclf.runtimes import check_precision, choose
from vidclf.runtimes.convert import cached_model
from vidclf.runtimes.engines import open_engine


class RuntimeNet(nn.Module):
    """Logits (B, K) for float clips (B, C, T, H, W), computed by an engine (vidclf.runtimes.engines)."""

    def __init__(self, engine, runtime: str):
        super().__init__()
        self.engine, self.runtime = engine, runtime

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        clips = np.ascontiguousarray(x.detach().float().cpu().numpy())
        return torch.from_numpy(self.engine(clips))


def runtime_net(net: nn.Module, clip_shape: tuple, runtime: str, precision: str = "fp32",
                threads: Optional[int] = None) -> RuntimeNet:
    """`net` converted (once per machine and weights; see convert.cached_model) and opened in `runtime`,
    for clips of `clip_shape` (C, T, H, W)."""
    example = torch.zeros((2, *clip_shape))
    path = cached_model(net, example, weights_sha256(net), runtime)
    return RuntimeNet(open_engine(path, runtime, threads or torch.get_num_threads(), precision), runtime)


def convert(model, clip, runtime: str, asked: str, precision: str) -> Optional[RuntimeNet]:
    """The classifier's network in `runtime` for clips of `clip` (ClipSettings); where it does not convert
    and `asked` is auto, None (torch runs it, and a line says why), else one line naming both."""
    try:
        return runtime_net(model.net, (3, clip.frames, clip.crop, clip.crop), runtime, precision)
    except VidclfError as err:
        if asked != "auto":
            raise
        print(f"vidclf: runtime torch: {model.hparams.backbone}: {err}", file=sys.stderr)
        return None


def swap_in(model, clip, runtime: str, precision: str) -> tuple[str, Optional[nn.Module]]:
    """The classifier's network replaced by its conversion to `runtime` (auto: see vidclf.runtimes.choose)
    for the model's device, the choice said on standard error; returns (the runtime that runs, the
    torch network it replaced: None where torch runs)."""
    asked, runtime = runtime, choose(runtime, model.device.type)
    check_precision(runtime, precision)  # auto may have found no OpenVINO
    if runtime == "torch":
        if asked == "auto":  # say why: a GPU, or no other runtime installed
            print(f"vidclf: runtime torch ({model.device.type}, {torch.get_num_threads()} threads)", file=sys.stderr)
        return "torch", None
    net = convert(model, clip, runtime, asked, precision)
    if net is None:
        return "torch", None
    kept, model.net = model.net, net
    print(f"vidclf: runtime {runtime} at {precision} ({torch.get_num_threads()} threads; --runtime torch "
          f"runs the checkpoint in torch)", file=sys.stderr)
    return runtime, kept


def weights_sha256(net: nn.Module) -> str:
    """Of the network's parameters and buffers, by name: what makes two conversions the same model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                      if tensor.numel() else b"")
    return digest.hexdigest()


class UseRuntime(pl.Callback):
    """Runs predict/validate/test in `runtime` (auto: see vidclf.runtimes.choose) at `precision`."""

    def __init__(self, runtime: str, precision: str, model_file: Optional[str] = None):
        self.runtime, self.precision, self.model_file = runtime, precision, model_file
        self.kept: Optional[nn.Module] = None

    def _swap_in(self, trainer, model) -> None:
        if self.model_file:  # an exported file in place of the checkpoint (nothing to swap back)
            from vidclf.runtimes.model_file import take_file

            runtime = take_file(model, self.model_file, None)
            print(f"vidclf: runtime {runtime} running {self.model_file} ({torch.get_num_threads()} threads)",
                  file=sys.stderr)
            return
        _, self.kept = swap_in(model, trainer.datamodule.clip, self.runtime, self.precision)

    def _swap_out(self, trainer, model) -> None:
        if self.kept is not None:
            model.net, self.kept = self.kept, None

    def on_predict_start(self, trainer, pl_module) -> None:
        self._swap_in(trainer, pl_module)

    def on_predict_end(self, trainer, pl_module) -> None:
        self._swap_out(trainer, pl_module)

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.state.fn != "fit":
            self._swap_in(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        self._swap_out(trainer, pl_module)

    def on_test_start(self, trainer, pl_module) -> None:
        self._swap_in(trainer, pl_module)

    def on_test_end(self, trainer, pl_module) -> None:
        self._swap_out(trainer, pl_module)
