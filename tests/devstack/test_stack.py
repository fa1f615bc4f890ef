"""``make run``: the supervisor brings the whole stack up, and takes all of it down again.

The stack runs as ``python -m shared.devstack`` (what ``make run`` runs) on free
ports, with a temporary data folder and its own working directory. Every
process is found by the pid files the supervisor writes and checked by pid.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from shared.devstack.processes import wait_until
from tests.support.devstack import CHILDREN, SERVICES, SupervisedStack, gone

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_stack_comes_up_and_sigint_stops_every_process(stack: SupervisedStack) -> None:
    supervisor = stack.start()
    stack.wait_healthy(supervisor)
    pids = stack.pids()
    assert set(pids) == set(CHILDREN)
    assert not any(gone(pid) for pid in pids.values())

    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(60) == 0

    still_running = [name for name, pid in pids.items() if not gone(pid)]
    assert still_running == []
    assert list((stack.data_dir / "run").glob("*.pid")) == []
    assert (stack.data_dir / "goals.db").exists()
    lines = stack.output(0)
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {record.get("service") for record in records} >= {"devstack", *SERVICES, "smtp-sink"}
    assert any(record.get("logger", "").startswith("uvicorn") for record in records)
    assert any(record.get("event") == "stack.ready" for record in records)
    # Each service shut down through its lifespan: consumers left, then the runtime.
    stopped = {(r.get("service"), r.get("event")) for r in records}
    for service in SERVICES:
        assert (service, "service.stopped") in stopped
    for consumer in ("sessions", "notifications"):
        assert (consumer, "consumer.stopped") in stopped


def test_a_killed_supervisor_takes_its_children_along_and_the_next_start_succeeds(
    stack: SupervisedStack,
) -> None:
    first = stack.start()
    stack.wait_healthy(first)
    pids = stack.pids()
    assert set(pids) == set(CHILDREN)

    first.send_signal(signal.SIGKILL)
    first.wait(10)
    wait_until(
        lambda: all(gone(pid) for pid in pids.values()),
        timeout=30,
        what="every child of the killed supervisor to exit",
    )
    assert {path.stem for path in (stack.data_dir / "run").glob("*.pid")} >= set(CHILDREN)

    second = stack.start()  # stale pid files and all
    stack.wait_healthy(second)
    new_pids = stack.pids()
    assert set(new_pids) == set(CHILDREN)
    assert not set(new_pids.values()) & set(pids.values())

    second.send_signal(signal.SIGINT)
    assert second.wait(60) == 0
    assert all(gone(pid) for pid in new_pids.values())


def test_ctrl_c_while_the_stack_is_still_starting_stops_everything(stack: SupervisedStack) -> None:
    supervisor = stack.start()
    wait_until(
        lambda: set(stack.pids()) == set(CHILDREN),
        timeout=20,
        what="every child to be spawned",
        alive=lambda: supervisor.poll() is None,
    )
    pids = stack.pids()

    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(60) == 0
    assert [name for name, pid in pids.items() if not gone(pid)] == []


def test_a_bad_stack_setting_stops_at_start_naming_the_variable(stack: SupervisedStack) -> None:
    stack.env["STACK_GOALS_PORT"] = "eighty"
    supervisor = stack.start()
    assert supervisor.wait(30) == 2
    output = "\n".join(stack.output(0))
    assert "STACK_GOALS_PORT" in output
    assert "Traceback" not in output
    assert not (stack.data_dir / "run").exists()


def test_a_child_that_keeps_crashing_stops_the_stack_naming_it(stack: SupervisedStack) -> None:
    stack.env.update(STACK_RESTART_LIMIT="1", STACK_RESTART_WINDOW_SECONDS="300")
    supervisor = stack.start()
    stack.wait_healthy(supervisor)
    pids = stack.pids()

    os.kill(pids["sessions"], signal.SIGKILL)  # the first crash: restarted
    wait_until(
        lambda: stack.pids()["sessions"] != pids["sessions"],
        timeout=30,
        what="sessions to be restarted",
        alive=lambda: supervisor.poll() is None,
    )
    os.kill(stack.pids()["sessions"], signal.SIGKILL)  # the second within the window: enough

    assert supervisor.wait(60) == 1
    records = [json.loads(line) for line in stack.output(0)]
    crashing = [r for r in records if r.get("event") == "stack.child.crashing"]
    assert [(r["name"], r["crashes"]) for r in crashing] == [("sessions", 2)]
    assert [r["name"] for r in records if r.get("event") == "stack.child.restarted"] == ["sessions"]
    assert [name for name, pid in stack.seen.items() if not gone(pid)] == []
