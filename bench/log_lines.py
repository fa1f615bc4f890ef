"""What one structured log line costs: CPU per line rendered, and per line below the level.

The services log a line per event at each step (about five per delivered
event end to end, one per timer fired), so this is per-event cost. The
process is configured the way a service configures itself (JSON lines) and
writes into /dev/null; a request's context is bound, as it is on the hot
paths. Prints microseconds of process CPU per line.

    python -m bench.log_lines
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from shared.context import bound
from shared.logs import configure_logging, get_logger

LINES = 50_000


def per_line(write: Callable[[int], None]) -> float:
    began = time.process_time()
    for n in range(LINES):
        write(n)
    return (time.process_time() - began) / LINES * 1e6


def main() -> None:
    with open(os.devnull, "w") as sink:
        configure_logging("goals", level="INFO", fmt="json", stream=sink)
        log = get_logger("services.goals.bench")
        context = {"request_id": "r-1", "correlation_id": "c-1", "tenant_id": "acme"}
        with bound(**context, event_id="evt-1"):
            for _ in range(2):  # the first round warms the loggers' caches
                rendered = per_line(lambda n: log.info("goal.created", goal_id="g-1", n=n))
                below = per_line(lambda n: log.debug("goal.created", goal_id="g-1", n=n))
    print(f"rendered {rendered:.1f} us/line, below the level {below:.2f} us/line")


if __name__ == "__main__":
    main()
