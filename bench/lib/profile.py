"""Optional sampling profiles of the services under load (``--profile``), with py-spy.

py-spy (``pip install py-spy``) attaches to a running process without
changing it; each profiled service gets a collapsed-stack file under
``bench/results/profiles/`` (one line per stack and its sample count), which
flame-graph tools read and ``python -m bench.lib.profile FILE`` summarises.
"""

from __future__ import annotations

import collections
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PROFILES = Path(__file__).resolve().parents[1] / "results" / "profiles"


@contextlib.contextmanager
def profiling(enabled: bool, name: str, pids: dict[str, int]) -> Iterator[None]:
    """Sample each pid (100 Hz) while the block runs; a no-op unless ``enabled``."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not enabled or not Path(spy).exists():
        if enabled:
            print("py-spy not found: pip install py-spy", flush=True)
        yield
        return
    PROFILES.mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "100",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(PROFILES / f"{name}-{service}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for service, pid in pids.items()
    ]
    try:
        yield
    finally:
        for recorder in recorders:  # SIGINT makes py-spy write what it sampled
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            try:
                recorder.wait(30)
            except subprocess.TimeoutExpired:
                recorder.kill()


def summarise(path: Path, top: int = 25) -> str:
    """The functions with the most samples on top of the stack, and in the stack."""
    own: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [re.sub(r" \(.*site-packages/| \(/.*?/main/", " (", f) for f in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            anywhere[frame] += int(count)
    lines = [f"{path.name}: {total} samples", "-- on top (self)"]
    lines += [f"{100 * n / total:5.1f}% {f}" for f, n in own.most_common(top)]
    lines.append("-- anywhere in the stack (inclusive)")
    lines += [f"{100 * n / total:5.1f}% {f}" for f, n in anywhere.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        print(summarise(Path(argument)))
