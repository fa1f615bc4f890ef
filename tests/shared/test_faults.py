"""The test-only fault points: parsed strictly, armed only outside production, fired once."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from shared import faults


@pytest.fixture(autouse=True)
def disarmed() -> Iterator[None]:
    yield
    faults.arm("")


def test_specs_are_parsed_strictly() -> None:
    parsed = faults.parse("consumer.after_handler=exit@3, relay.after_publish=sleep:1.5")
    assert (parsed["consumer.after_handler"].action, parsed["consumer.after_handler"].at) == (
        "exit",
        3,
    )
    assert parsed["relay.after_publish"].seconds == 1.5
    for bad in ("nowhere=exit", "consumer.after_handler", "relay.after_publish=explode"):
        with pytest.raises(ValueError, match="FOLLOWTHROUGH_TEST_FAULTS"):
            faults.parse(bad)
    with pytest.raises(ValueError, match="counts from 1"):
        faults.parse("relay.after_publish=exit@0")


def test_production_ignores_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.ENV_VARIABLE, "consumer.after_handler=exit")
    faults.arm_from_environment("production")
    assert not faults.armed
    faults.arm_from_environment("test")
    assert faults.armed


async def test_a_pause_fires_once_on_the_chosen_visit() -> None:
    faults.arm("dispatcher.after_send=sleep:0.3@2")
    started = time.monotonic()
    await faults.reached("dispatcher.after_send")
    first = time.monotonic() - started
    await faults.reached("dispatcher.after_send")
    second = time.monotonic() - started
    await faults.reached("dispatcher.after_send")
    assert first < 0.3 <= second
    assert faults._faults["dispatcher.after_send"].done


def test_exit_ends_the_process_with_its_own_code() -> None:
    code = (
        "import asyncio\n"
        "from shared import faults\n"
        "faults.arm('relay.after_publish=exit')\n"
        "asyncio.run(faults.reached('relay.after_publish'))\n"
        "raise SystemExit(0)\n"
    )
    finished = subprocess.run([sys.executable, "-c", code], timeout=30, check=False)
    assert finished.returncode == faults.EXIT_CODE
