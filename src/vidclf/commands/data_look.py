"""`vidclf data`: a look at the data before training, per split, from the remembered scan.

Per split and class: samples, total and mean duration (of the segment, for segments); per split:
resolutions, frame rates and codecs; every unreadable or missing file; the same content in two
splits (or twice in one), found by content hash. Writes OUT/summary.csv (split, class, samples,
seconds, mean_seconds), OUT/files.csv (one row per sample with its facts and status),
OUT/duplicates.csv and OUT/class_balance.png, and prints the table.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from vidclf.data.scan import facts
from vidclf.data.segments import split as split_sample
from vidclf.errors import VidclfError
from vidclf.io.figures import pyplot, save_figure
from vidclf.io.files import write_rows

OUTPUTS = ("summary.csv", "files.csv", "duplicates.csv", "class_balance.png")
SHOWN = 3  # bad files named on the console per split (all of them are in files.csv)


def look(datamodule, output: str, overwrite: bool = False) -> dict:
    """Summarize every split the data module lists (nothing scanned or dropped) into folder `output`;
    an earlier look there is replaced only with `overwrite`."""
    earlier = [name for name in OUTPUTS if (Path(output) / name).exists()]
    if earlier and not overwrite:
        raise VidclfError(f"{output} already holds {', '.join(earlier)} of an earlier look; choose another --output "
                          f"or pass --overwrite true")
    splits = datamodule.listed_splits()
    return summarize(splits, {k: v for k, v in datamodule.ignored.items() if k[0] in splits}, Path(output))


def summarize(splits: dict[str, list], ignored: dict[tuple[str, str], str], out: Path) -> dict:
    """splits: {split: [(sample, label or label set)]}; ignored: {(split, path): reason}. Writes the
    files above and returns {"summary": rows, "duplicates": rows}."""
    out.mkdir(parents=True, exist_ok=True)
    known = facts([split_sample(s)[0] for items in splits.values() for s, _ in items], hashes=True)
    files, summary = [], []
    for name, items in splits.items():
        per_class: dict[str, list[float]] = defaultdict(list)
        for sample, labels in items:
            path, start, end = split_sample(sample)
            fact = known[path]
            seconds = fact.get("duration") or 0.0
            if start is not None:
                seconds = max(0.0, min(end, seconds) - start)
            for label in labels if isinstance(labels, tuple) else (labels,):
                per_class[label].append(seconds)
            files.append({"split": name, "path": path, "start": "" if start is None else start,
                          "end": "" if end is None else end,
                          "label": list(labels) if isinstance(labels, tuple) else labels, "seconds": round(seconds, 3),
                          "width": fact.get("width", ""), "height": fact.get("height", ""), "fps": fact.get("fps", ""),
                          "codec": fact.get("codec", ""), "status": _status(fact["error"])})
        summary += [{"split": name, "class": label, "samples": len(durations), "seconds": round(sum(durations), 1),
                     "mean_seconds": round(sum(durations) / len(durations), 2)}
                    for label, durations in sorted(per_class.items())]
    files += [{"split": name, "path": path, "status": reason} for (name, path), reason in sorted(ignored.items())]
    duplicates = _duplicates(splits, known)
    write_rows(str(out / "summary.csv"), summary)
    write_rows(str(out / "files.csv"), [{k: row.get(k, "") for k in files[0]} for row in files])
    write_rows(str(out / "duplicates.csv"), duplicates)
    _plot(summary, out / "class_balance.png")
    _print(splits, summary, files, duplicates, known, out)
    return {"summary": summary, "duplicates": duplicates, "files": files}


def _duplicates(splits: dict[str, list], known: dict) -> list[dict]:
    """Files whose content is the same (by hash) under different paths, or in different splits."""
    where: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for name, items in splits.items():
        for sample, _ in items:
            path = split_sample(sample)[0]
            if known[path].get("hash"):
                where[known[path]["hash"]].add((name, path))
    rows = []
    for digest, places in sorted(where.items()):
        if len({p for _, p in places}) > 1 or len({s for s, _ in places}) > 1:
            rows += [{"hash": digest, "split": s, "path": p} for s, p in sorted(places)]
    return rows


def _plot(summary: list[dict], path: Path) -> None:
    plt = pyplot()
    names = sorted({r["class"] for r in summary})
    split_names = list(dict.fromkeys(r["split"] for r in summary))
    counts = {(r["split"], r["class"]): r["samples"] for r in summary}
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names) + 2), 4.5), dpi=100)
    width = 0.8 / max(1, len(split_names))
    for i, name in enumerate(split_names):
        ax.bar([x + i * width for x in range(len(names))], [counts.get((name, c), 0) for c in names], width, label=name)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(names))], names, rotation=60 if len(names) > 8 else 0,
                  ha="right" if len(names) > 8 else "center", fontsize=8)
    ax.set_ylabel("samples")
    ax.set_title("samples per class")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def _print(splits, summary, files, duplicates, known, out: Path) -> None:
    for name, items in splits.items():
        rows = [r for r in summary if r["split"] == name]
        paths = {split_sample(s)[0] for s, _ in items}
        sizes = Counter(f"{known[p].get('width')}x{known[p].get('height')}" for p in paths if not known[p]["error"])
        rates = Counter(known[p].get("fps") for p in paths if not known[p]["error"])
        codecs = Counter(known[p].get("codec") for p in paths if not known[p]["error"])
        bad = [f for f in files if f["split"] == name and f["status"] != "ok"]
        total = sum(r["seconds"] for r in rows)
        print(f"{name}: {len(items)} samples of {len(paths)} videos, {len(rows)} classes, {_span(total)}; "
              f"{len(bad)} unreadable / missing / ignored")
        for f in bad[:SHOWN]:
            print(f"  {f['status']}: {f['path']}")
        if len(bad) > SHOWN:
            print(f"  ... and {len(bad) - SHOWN} more in {out / 'files.csv'}")
        for r in rows:
            print(f"  {r['class']:30} {r['samples']:7d} samples {r['seconds']:10.1f} s  (mean {r['mean_seconds']:.2f} s)")
        print(f"  resolutions: {_common(sizes)}; frame rates: {_common(rates)}; codecs: {_common(codecs)}")
    if duplicates:
        print(f"vidclf: {len({d['hash'] for d in duplicates})} file content(s) appear under several paths or splits "
              f"(the same video twice; in two splits it leaks): {out / 'duplicates.csv'}")
    print(f"vidclf: wrote {out / 'summary.csv'}, {out / 'files.csv'}, {out / 'duplicates.csv'}, "
          f"{out / 'class_balance.png'}")


def _status(error: str) -> str:
    """A file's row status: ok, missing: ..., or unreadable: why."""
    return "ok" if not error else error if error.startswith("missing") else f"unreadable: {error}"


def _span(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _common(counts: Counter) -> str:
    return ", ".join(f"{k} ({v})" for k, v in counts.most_common(4)) + (" ..." if len(counts) > 4 else "")
