"""A server under abuse: `vidclf serve` for --seconds with --clients concurrent clients on 127.0.0.1 that
mix good uploads, corrupt files, files over the size limit, uploads that stall half way and requests to
unknown routes. Reported: every request's status by kind (and any request left unanswered), good answers
that differ from `vidclf predict`'s rows for the same files, the resident memory and open files of the
server's processes before, during (sampled) and after, uploads left on disk, and whether it still answers.

The model is the demo recipe's (X3D-XS, 8 frames at 64 px, one short fit on rendered videos); the good
uploads are the real clips of ../shared/videos/labeled_actions.

    .venv/bin/python benchmarks/serve_abuse.py [--seconds 60] [--clients 64]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = sorted((ROOT.parent / "shared" / "videos" / "labeled_actions").glob("*/*.mp4"))[:8]
LIMIT_MB, READ_TIMEOUT = 2.0, 2.0
EXPECTED = {"good": 200, "corrupt": 422, "oversize": 413, "stall": 408, "unknown": 404}
_serve = importlib.util.spec_from_file_location("serve_bench", Path(__file__).with_name("serve.py"))
serve_bench = importlib.util.module_from_spec(_serve)
_serve.loader.exec_module(serve_bench)


def tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def open_files(pid: int) -> int:
    total = 0
    for p in tree(pid):
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            continue
    return total


def request(port: int, kind: str, video: Path, corrupt: bytes, oversize: bytes) -> tuple[int, dict]:
    """One request of `kind`: (HTTP status, JSON answer); status 0 when no answer came."""
    if kind == "stall":  # the headers and a tenth of the body, then nothing: the server must time it out
        with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT + 30) as s:
            s.sendall("POST /predict?name=stalled.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
                      "Content-Length: 1000000\r\nConnection: close\r\n\r\n".encode() + b"\0" * 100_000)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        return (int(head.split()[1]), json.loads(body or b"{}")) if head else (0, {})
    url = f"http://127.0.0.1:{port}"
    if kind == "unknown":
        req = urllib.request.Request(f"{url}/predict/../admin", method="GET")
    else:
        data = {"good": video.read_bytes() if kind == "good" else b"", "corrupt": corrupt, "oversize": oversize}[kind]
        name = video.name if kind == "good" else f"{kind}.mp4"
        req = urllib.request.Request(f"{url}/predict?name={name}", data=data, headers={"Content-Type": "video/mp4"})
    try:
        with urllib.request.urlopen(req, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def predicted(ckpt: str, folder: Path) -> dict[str, dict]:
    """`vidclf predict`'s rows for the good uploads, by file name."""
    out = folder / "predict.csv"
    subprocess.run([sys.executable, "-m", "vidclf", "predict", "--ckpt_path", ckpt, "--data.predict", str(folder),
                    "--output", str(out), "--trainer.enable_progress_bar", "false"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {Path(r["path"]).name: r for r in csv.DictReader(open(out))}


def same(answer: dict, row: dict) -> bool:
    return answer.get("label") == row["label"] and all(
        answer.get(f"top{k}_label") == row[f"top{k}_label"]
        and abs(answer.get(f"top{k}_prob", -1) - float(row[f"top{k}_prob"])) <= 1e-5 for k in (1, 2, 3))


def abuse(seconds: float, clients: int, work: Path) -> dict:
    """Run the abuse against a fresh server; the figures as a dict (see the module's docstring)."""
    goods = work / "good"
    goods.mkdir(parents=True, exist_ok=True)
    for video in VIDEOS:
        (goods / video.name).write_bytes(video.read_bytes())
    ckpt = serve_bench.checkpoint(work, None)
    reference = predicted(ckpt, goods)
    uploads = work / "tmp"
    uploads.mkdir(exist_ok=True)
    port = serve_bench.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vidclf", "serve", "--ckpt_path", ckpt, "--port", str(port),
                             "--max_upload_mb", str(LIMIT_MB), "--read_timeout", str(READ_TIMEOUT)],
                            env={**os.environ, "TMPDIR": str(uploads)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while True:
            try:
                if request(port, "good", VIDEOS[0], b"", b"")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.5)
        for _ in range(3):  # warm: decoders, model, allocator
            request(port, "good", VIDEOS[0], b"", b"")
        before = (serve_bench.tree_rss_mb(proc.pid), open_files(proc.pid))
        rng = random.Random(0)
        corrupt = bytes(rng.getrandbits(8) for _ in range(200_000))
        oversize = b"\0\0\0\x18ftypmp42" + bytes(int(LIMIT_MB * 1.5 * 2**20))
        results, lock, stop = [], threading.Lock(), time.time() + seconds
        kinds = list(EXPECTED)

        def client(c: int) -> None:
            i = 0
            while time.time() < stop:
                kind, video = kinds[(c + i) % len(kinds)], VIDEOS[(c + i) % len(VIDEOS)]
                begin = time.perf_counter()
                try:
                    status, answer = request(port, kind, video, corrupt, oversize)
                except OSError as err:
                    status, answer = 0, {"status": f"no answer: {err}"}
                right = kind != "good" or status != 200 or same(answer, reference[video.name])
                with lock:
                    results.append((kind, status, right, time.perf_counter() - begin))
                i += 1

        samples = []
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            samples.append((serve_bench.tree_rss_mb(proc.pid), open_files(proc.pid)))
            time.sleep(2)
        for t in threads:
            t.join()
        time.sleep(1)
        after = (serve_bench.tree_rss_mb(proc.pid), open_files(proc.pid))
        still, answer = request(port, "good", VIDEOS[1], b"", b"")
        settle = time.time() + 5  # a file is deleted just after its answer is sent: allow the server a moment
        while (left := [f for d in uploads.glob("vidclf-uploads-*") for f in d.iterdir()]) and time.time() < settle:
            time.sleep(0.1)
        return {"requests": len(results), "statuses": Counter((k, s) for k, s, _, _ in results),
                "unanswered": sum(s == 0 for _, s, _, _ in results),
                "wrong": sum(not r for _, _, r, _ in results),
                "slowest": {k: max((t for kk, _, _, t in results if kk == k), default=0) for k in kinds},
                "memory_mb": (before[0], max(m for m, _ in samples), after[0]),
                "open_files": (before[1], max(f for _, f in samples), after[1]),
                "uploads_left": len(left), "still_answers": still == 200 and same(answer, reference[VIDEOS[1].name])}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = abuse(args.seconds, args.clients, Path(tmp))
    print(f"{args.clients} clients for {args.seconds:g} s: {r['requests']} requests, {r['unanswered']} unanswered, "
          f"{r['wrong']} good answers differing from predict's rows")
    for kind, expected in EXPECTED.items():
        got = {s: n for (k, s), n in sorted(r["statuses"].items()) if k == kind}
        print(f"  {kind:<9} expected {expected}: {got}  (slowest {r['slowest'][kind]:.1f} s)")
    m, f = r["memory_mb"], r["open_files"]
    print(f"  memory of the server's processes: before {m[0]:.0f} MB, during at most {m[1]:.0f} MB, after {m[2]:.0f} MB")
    print(f"  open files: before {f[0]}, during at most {f[1]}, after {f[2]}")
    print(f"  uploads left on disk: {r['uploads_left']}; answers afterwards: {r['still_answers']}")


if __name__ == "__main__":
    main()
