"""Test-only fault points: make a service process die, or pause, at a named moment.

Some crash windows are too narrow to hit with ``kill -9`` from outside: the
instant between a consumer's handler returning and its offset commit, or
between the broker acknowledging an outbox batch and the relay marking the
rows sent. The reliability tests open such a window exactly by starting a
service process with ``FOLLOWTHROUGH_TEST_FAULTS``, e.g.

* ``consumer.after_handler=exit``: ``os._exit`` there, the first time;
* ``relay.after_publish=exit@3``: the third time that point is reached;
* ``consumer.after_handler=sleep:4``: pause four seconds there, once (to hold a
  batch in flight while another member joins the group).

Several points are separated by commas. The variable is read once, when the
service starts, and only when its environment is ``development`` or ``test``:
in production it is ignored, with a warning. A point nobody armed costs one
attribute check (``if faults.armed``), so the hooks stay out of the way of
the production paths they sit on. The points are listed in
docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from shared.logs import get_logger

log = get_logger(__name__)

ENV_VARIABLE = "FOLLOWTHROUGH_TEST_FAULTS"
EXIT_CODE = 86
"""What a process killed by a fault point exits with, so a test can tell it from a crash."""

POINTS = frozenset(
    {
        "consumer.after_handler",  # the batch's work is durable, its offsets not yet committed
        "relay.after_publish",  # the broker acknowledged the rows, they are not marked sent
        "dispatcher.after_send",  # the receiver answered, the outcome is not recorded
    }
)


@dataclass
class _Fault:
    action: str  # "exit" or "sleep"
    seconds: float
    at: int  # trigger on this visit (1-based)
    visits: int = 0
    done: bool = False


_faults: dict[str, _Fault] = {}
armed = False
"""True when any point is armed; callers check it before awaiting :func:`reached`."""


def parse(spec: str) -> dict[str, _Fault]:
    """``point=action[@n],...`` into faults; raises ValueError naming what is wrong."""
    faults: dict[str, _Fault] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        point, sep, rest = item.partition("=")
        if not sep or point not in POINTS:
            raise ValueError(f"{ENV_VARIABLE}: unknown fault point in {item!r}")
        action, _, visit = rest.partition("@")
        at = int(visit) if visit else 1
        if action == "exit":
            faults[point] = _Fault("exit", 0.0, at)
        elif action.startswith("sleep:"):
            faults[point] = _Fault("sleep", float(action.removeprefix("sleep:")), at)
        else:
            raise ValueError(f"{ENV_VARIABLE}: unknown action in {item!r} (exit or sleep:<s>)")
        if at < 1:
            raise ValueError(f"{ENV_VARIABLE}: the visit in {item!r} counts from 1")
    return faults


def arm(spec: str) -> None:
    global armed
    _faults.clear()
    _faults.update(parse(spec))
    armed = bool(_faults)
    if armed:
        log.warning("fault.armed", points=sorted(_faults))


def arm_from_environment(environment: str) -> None:
    """Arm what ``FOLLOWTHROUGH_TEST_FAULTS`` names, outside production only."""
    spec = os.environ.get(ENV_VARIABLE, "")
    if not spec:
        return
    if environment not in {"development", "test"}:
        log.warning("fault.ignored", environment=environment, variable=ENV_VARIABLE)
        return
    arm(spec)


async def reached(point: str) -> None:
    """Called at a fault point: exits or pauses when this visit is the armed one."""
    fault = _faults.get(point)
    if fault is None or fault.done:
        return
    fault.visits += 1
    if fault.visits < fault.at:
        return
    fault.done = True
    log.warning("fault.injected", point=point, action=fault.action, visit=fault.visits)
    if fault.action == "exit":
        os._exit(EXIT_CODE)
    await asyncio.sleep(fault.seconds)
