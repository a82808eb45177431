"""`vidclf search EMBEDDINGS 'words'` or `--like VIDEO`: the videos (or windows) of a `vidclf embed` file
ranked by cosine similarity to a text (video-text models' embeddings) or to a video of the file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.nn import functional as F

from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.io.files import check_output, write_rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidclf search", description=__doc__.split("\n\n")[0].replace("\n", " "))
    p.add_argument("embeddings", help="a .parquet file written by vidclf embed (local or a URL)")
    p.add_argument("query", nargs="?", help="words to look for (embeddings of X-CLIP, CLIP or SigLIP models)")
    p.add_argument("--like", metavar="VIDEO", help="rank by likeness to this video of the file (its path column)")
    p.add_argument("--top_k", type=int, default=10, help="rows to show (default 10)")
    p.add_argument("--prompt", action="append", help="template for the words, e.g. 'a video of {}.' (repeatable; "
                                                     "default: the model's own)")
    p.add_argument("--output", help="also write the ranked rows to this .csv or .jsonl file")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    return p


def main(args: list[str]) -> None:
    options = parser().parse_args(args)
    if (options.query is None) == (options.like is None):
        raise VidclfError("search needs words ('a person jumping') or --like VIDEO, one of the two")
    if options.top_k < 1:
        raise VidclfError(f"--top_k {options.top_k}: show at least one row")
    if options.output:
        check_output(options.output, options.overwrite)
    rows, vectors, meta = read(options.embeddings)
    if options.like is not None:
        own = [i for i, r in enumerate(rows) if r["path"] == options.like]
        if not own:
            raise VidclfError(f"--like {options.like}: not a video of {options.embeddings} (or it failed to "
                              f"embed); embed it with the others first, and give its path as the path column has it")
        query = vectors[own].mean(0, keepdim=True)
        keep = [i for i in range(len(rows)) if rows[i]["path"] != options.like]
        rows, vectors = [rows[i] for i in keep], vectors[keep]
    else:
        query = text_query(meta, options.query, options.prompt)
    scores = (F.normalize(vectors, dim=-1) @ F.normalize(query, dim=-1).T)[:, 0]
    order = scores.argsort(descending=True)[:options.top_k].tolist()
    ranked = [{"rank": n, "score": round(float(scores[i]), 6), **rows[i]} for n, i in enumerate(order, start=1)]
    print(f"{'rank':>4}  {'score':>8}  path")
    for row in ranked:
        where = "" if row["start"] is None else f"  [{row['start']:.2f}-{row['end']:.2f} s]"
        print(f"{row['rank']:>4}  {row['score']:>8.4f}  {row['path']}{where}")
    if options.output:
        with storage.written_locally(options.output) as (local,):
            write_rows(local, [{k: "" if v is None else v for k, v in r.items()} for r in ranked])


def read(path: str) -> tuple[list[dict], torch.Tensor, dict]:
    """The ok rows (path, start, end) of an embeddings file, their vectors (N, D) and its metadata."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if Path(path).suffix != ".parquet":
        raise VidclfError(f"{path}: search reads the .parquet files of vidclf embed (--output NAME.parquet)")
    try:
        local = storage.local_copy(path) if storage.is_remote(path) else path
        table = pq.read_table(local)
    except (OSError, ValueError) as err:
        raise VidclfError(f"{path}: not a readable Parquet file ({storage.reason(err)})") from None
    meta = json.loads((table.schema.metadata or {}).get(b"vidclf", b"{}"))
    if "embedding" not in table.column_names or not meta:
        raise VidclfError(f"{path}: not written by vidclf embed (no embedding column or vidclf metadata)")
    table = table.filter(pc.equal(table["status"], "ok"))
    if table.num_rows == 0:
        raise VidclfError(f"{path}: no video embedded ok; nothing to rank")
    flat = table["embedding"].combine_chunks().flatten().to_numpy()
    vectors = torch.from_numpy(flat.reshape(table.num_rows, -1).copy())
    rows = [{k: r[k] for k in ("path", "start", "end")} for r in table.select(["path", "start", "end"]).to_pylist()]
    return rows, vectors, meta


def text_query(meta: dict, words: str, prompts: list[str] | None) -> torch.Tensor:
    """The query's vector (1, D) from the text tower of the model that embedded the file."""
    from vidclf.models.backbones import ALIASES
    from vidclf.models.backbones.words import PROMPTS, check_prompts, text_model, text_vectors

    backbone = ALIASES.get(meta.get("backbone", ""), meta.get("backbone", ""))
    if not backbone.startswith("hf:"):
        raise VidclfError(f"the file was embedded by {backbone}, which has no text tower; search it --like VIDEO, "
                          f"or embed with a video-text backbone (hf: X-CLIP, CLIP, SigLIP)")
    model, kind, folder = text_model(backbone[3:])
    return text_vectors(model, kind, folder, [words], check_prompts(prompts) or PROMPTS[kind], backbone)
