"""How many threads the model's math gets in this process: the cores that are really free.

torch's default is the machine's physical core count, which ignores CPU affinity (taskset, Slurm),
cgroup CPU quotas (containers) and other busy processes. On 2 cores with one other busy process,
the demo trained at 20.3 s/epoch with torch's 2 threads and 14.5 s/epoch with 1; on the same
machine idle, 2 threads were faster (8.4 vs 13.6 s/epoch) even with 2 decoding workers, which
mostly wait (benchmarks/threads.py, docs/benchmarks.md). So: the cores this process may use,
shared between the processes of the run on this machine, less what other processes are using
now (sampled for 0.2 s). OMP_NUM_THREADS set by the user wins.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

USER_THREADS = "VIDCLF_USER_THREADS"  # set by main(): whether OMP_NUM_THREADS came from the user


def usable_cores() -> list[int]:
    """The CPUs this process may run on (affinity), as ids; every CPU where the platform has no
    affinity call (macOS, Windows)."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return sorted(affinity(0))
    return list(range(os.cpu_count() or 1))


def core_count() -> int:
    """How many cores this process may use: its affinity, capped by the container's CPU quota.
    The one core count vidclf uses (threads, decoding pools, the scan)."""
    return max(1, int(min(len(usable_cores()), cgroup_limit())))


def cgroup_limit() -> float:
    """The container's CPU quota in cores (cgroup v2 cpu.max), or infinity."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return float("inf") if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return float("inf")


def idle_cores(cores: list[int], seconds: float = 0.2) -> float:
    """How many of `cores` were idle over `seconds` (from /proc/stat), or len(cores) where unknown."""
    def sample() -> dict[int, tuple[int, int]]:
        times = {}
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
                    ticks = [int(x) for x in fields[:8]]
                    times[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))  # (idle + iowait, all)
        return times

    try:
        before = sample()
        time.sleep(seconds)
        after = sample()
    except (OSError, ValueError, IndexError):
        return float(len(cores))
    if not before:
        return float(len(cores))
    return sum((after[c][0] - before[c][0]) / max(1, after[c][1] - before[c][1]) for c in before if c in after)


def compute_threads(processes: int = 1) -> int | None:
    """Threads for torch in this process, or None to leave the user's OMP_NUM_THREADS alone."""
    if os.environ.get(USER_THREADS, "1" if "OMP_NUM_THREADS" in os.environ else "0") == "1":
        return None
    cores = usable_cores()
    share = core_count() / max(1, processes)
    free = idle_cores(cores) / max(1, processes)
    return max(1, int(min(share, free + 0.5)))


def share_threads(processes: int = 1) -> int | None:
    """Threads for torch in one of `processes` processes that share this machine's cores (a server's
    model workers: its own start-up keeps the cores busy while they start, so idleness says nothing),
    or None to leave the user's OMP_NUM_THREADS alone."""
    if os.environ.get(USER_THREADS, "1" if "OMP_NUM_THREADS" in os.environ else "0") == "1":
        return None
    return max(1, int(core_count() / max(1, processes)))
