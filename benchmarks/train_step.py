"""Training-step speed per backbone at its native input: vidclf's default (channels_last_3d) vs plain
eager (default memory format), and channels_last_3d + torch.compile (first step = compile time),
forward + backward + AdamW step, measured in the same run.

Each backbone runs in its own subprocess so its peak memory is its own (CPU: peak RSS; GPU: peak
allocated, with bf16 autocast when --device cuda).

    .venv/bin/python benchmarks/train_step.py [--backbones x3d_xs,x3d_s] [--batch 8] [--device cpu]

Hugging Face and timm backbones run at their real sizes from their default configs, randomly
initialised (nothing is downloaded): videomae_b, timesformer_b, vivit_b, vjepa2_l (as `hf-arch`
names below) and timm:NAME. For them "eager" is eager attention and "vidclf" is PyTorch SDPA
(transformers' default); channels_last_3d applies to the zoo's 3D convolutions only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from vidclf.models.backbones import BACKBONES, build_backbone, get_spec

# real-size architectures of the hf family, from transformers' default configs (ViT-B, V-JEPA 2 ViT-L)
HF_ARCHS = {"videomae_b": ("VideoMAEConfig", {}), "timesformer_b": ("TimesformerConfig", {}),
            "vivit_b": ("VivitConfig", {}), "vjepa2_l": ("VJEPA2Config", {"frames_per_clip": 16})}


def resolve(name: str) -> str:
    """A backbone name to build without downloads: hf architectures from their default configs."""
    if name not in HF_ARCHS:
        return name
    import transformers

    from vidclf.models.backbones import hf_files

    config_class, overrides = HF_ARCHS[name]
    config = getattr(transformers, config_class)(**overrides).to_dict()
    hf_files.remember(f"bench/{name}", {"config.json": config})
    return f"hf:bench/{name}"


def measure(name: str, batch: int, layout: str, device: str, steps: int) -> dict:
    name = resolve(name)
    spec = get_spec(name)
    channels_last = layout != "eager" and spec.family == "zoo"
    torch.manual_seed(0)
    net = build_backbone(name, num_classes=10).to(device)
    if layout == "eager" and hasattr(net, "model"):  # hf: eager attention instead of SDPA
        net.model.set_attn_implementation("eager")
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    model = torch.compile(net) if layout == "compile" else net
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, spec.frames, spec.crop, spec.crop, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device=device)

    def step():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    first = time.perf_counter()
    step()  # warm-up (with torch.compile: compiles)
    first = time.perf_counter() - first
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"step_s": seconds, "first_s": first, "clips_s": batch / seconds, "peak_mb": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default="x3d_xs,x3d_s,r3d_18,r2plus1d_18", help="comma list, or 'all'")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also measure channels_last_3d + torch.compile")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: NAME:LAYOUT
    args = parser.parse_args()
    if args.one:
        name, layout = args.one.rsplit(":", 1)
        print(json.dumps(measure(name, args.batch, layout, args.device, args.steps)))
        return
    names = list(BACKBONES) if args.backbones == "all" else args.backbones.split(",")
    print(f"device {args.device}, batch {args.batch}, {args.steps} timed steps, torch threads {torch.get_num_threads()}")
    layouts = ("eager", "cl", "compile") if args.compile else ("eager", "cl")
    print(f"{'backbone':24s} {'input':>12s} {'eager s/step':>12s} {'vidclf s/step':>13s} {'speed-up':>8s} "
          f"{'clips/s':>8s} {'peak MB':>8s}" + (f" {'compiled s/step':>15s} {'compile s':>9s} {'break-even steps':>16s}"
                                                 if args.compile else ""))
    for name in names:
        spec = get_spec(resolve(name))
        runs = {}
        for layout in layouts:
            out = subprocess.run([sys.executable, __file__, "--one", f"{name}:{layout}", "--batch", str(args.batch),
                                  "--steps", str(args.steps), "--device", args.device],
                                 capture_output=True, text=True, check=True)
            runs[layout] = json.loads(out.stdout.strip().splitlines()[-1])
        e, v = runs["eager"], runs["cl"]
        line = (f"{name:24s} {f'{spec.frames}x{spec.crop}x{spec.crop}':>12s} {e['step_s']:12.2f} {v['step_s']:13.2f} "
                f"{e['step_s'] / v['step_s']:7.2f}x {v['clips_s']:8.2f} {v['peak_mb']:8.0f}")
        if args.compile:
            c = runs["compile"]
            gain = v["step_s"] - c["step_s"]
            cost = c["first_s"] - v["first_s"]  # compile time beyond an eager first step
            even = f"{cost / gain:.0f}" if gain > 0 else "never"
            line += f" {c['step_s']:15.2f} {cost:9.1f} {even:>16s}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
