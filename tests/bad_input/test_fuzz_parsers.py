"""Hypothesis against the two parsers every untrusted byte goes through.

* The CloudEvent parser (``parse_event``): whatever arrives on a topic (random
  bytes, mangled real events, wrong types in every attribute) either parses
  into a typed event or raises an ``EventError`` with one of the dead-letter
  reasons, never anything else, so the consumer always knows what to do.
* The RRULE / check-in policy validator: RRULE "bombs" (sub-hourly, a billion
  occurrences, impossible dates, huge intervals, rules that cannot fire at
  the policy's own time of day) are refused with a ValueError, and every
  rule that is accepted can be planned by sessions from any start: the first
  occurrence is found (or there is none), never an exception, and
  occurrences are at least an hour apart.

Derandomized with bounded example counts, so CI runs the same cases every time.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.goals.schemas import CheckinPolicyIn
from services.sessions.recurrence import first_due_after, occurrences_between
from shared.events import CloudEvent, EventError, parse_event
from shared.events.catalog.policy import RRULE_MAX_COUNT, CheckinPolicy, check_rrule
from tests.support.events import endpoint_disabled, milestone_completed

REASONS = {"malformed_json", "unknown_event_type", "invalid_event_data", "invalid_event"}
FUZZ = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _parses_or_refuses(raw: bytes | str | dict[str, Any]) -> CloudEvent | EventError:
    outcome: CloudEvent | EventError
    try:
        outcome = parse_event(raw)
    except EventError as error:
        outcome = error
    if isinstance(outcome, EventError):
        assert outcome.reason in REASONS, outcome
        assert str(outcome)
    return outcome


REAL = [milestone_completed().to_dict(), endpoint_disabled(7).to_dict()]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@st.composite
def mangled_events(draw: st.DrawFn) -> dict[str, Any]:
    """A real event with attributes replaced, removed or added, at any depth of ``data``."""
    event: dict[str, Any] = orjson.loads(orjson.dumps(draw(st.sampled_from(REAL))))
    for _ in range(draw(st.integers(1, 4))):
        target = event
        keys = list(target)
        while keys and isinstance(target.get("data"), dict):
            descend: bool = draw(st.booleans())
            if not descend:
                break
            target = target["data"]
            keys = list(target)
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "add" or not keys:
            target[draw(st.text(max_size=10))] = draw(json_values)
        elif action == "remove":
            target.pop(draw(st.sampled_from(keys)))
        else:
            target[draw(st.sampled_from(keys))] = draw(json_values)
    return event


@FUZZ
@given(raw=st.binary(max_size=400))
def test_random_bytes_never_escape_the_parser(raw: bytes) -> None:
    assert isinstance(_parses_or_refuses(raw), EventError) or raw.strip().startswith(b"{")


@FUZZ
@given(event=mangled_events(), cut=st.integers(0, 2000), as_bytes=st.booleans())
def test_mangled_real_events_parse_or_are_refused_with_a_reason(
    event: dict[str, Any], cut: int, as_bytes: bool
) -> None:
    outcome = _parses_or_refuses(event)
    if isinstance(outcome, CloudEvent):
        assert parse_event(outcome.to_json()).to_dict() == outcome.to_dict()  # round-trips
    encoded = orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS)
    truncated = encoded[:cut]
    _parses_or_refuses(truncated if as_bytes else truncated.decode("utf-8", "replace"))


def test_hostile_shapes_are_refused_with_their_reason() -> None:
    real = orjson.dumps(REAL[0])
    cases = {
        b"[" * 50_000 + b"]" * 50_000: "malformed_json",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000: "malformed_json",
        real.replace(b"Ada", b"\xff\xfe"): "malformed_json",
        real.replace(b'"milestone.completed"', b'"milestone.exploded"'): "unknown_event_type",
        real.replace(b'"acme"', b'"ACME ~"'): "invalid_event_data",
        real.replace(b'"1.0"', b'"0.3"'): "invalid_event_data",
        real.replace(b'"Run 10 km"', b'"' + b"x" * 300_000 + b'"'): "invalid_event_data",
        b"null": "malformed_json",
        b"": "malformed_json",
    }
    for raw, reason in cases.items():
        outcome = _parses_or_refuses(raw)
        assert isinstance(outcome, EventError), raw[:60]
        assert outcome.reason == reason, (raw[:60], outcome)


# --- RRULEs and policies --------------------------------------------------------------

FREQS = ["SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def _ints(low: int, high: int, size: int = 4) -> st.SearchStrategy[str]:
    return st.lists(st.integers(low, high), min_size=1, max_size=size).map(
        lambda values: ",".join(map(str, values))
    )


RRULE_PARTS: dict[str, st.SearchStrategy[str]] = {
    "INTERVAL": st.sampled_from(["1", "2", "3", "7", "24", "48", "997", "1000", "1001", "10**9"])
    | st.integers(-5, 5000).map(str),
    "COUNT": st.sampled_from(["1", "10000", "10001", "1000000000", "0", "-1"]),
    "UNTIL": st.sampled_from(["20991231", "99991231T235959Z", "20000101", "2030-01-01", "x"]),
    "BYMONTH": _ints(-1, 14),
    "BYMONTHDAY": _ints(-32, 32),
    "BYDAY": st.lists(
        st.tuples(st.sampled_from(["", "1", "-1", "2", "5", "53", "0"]), st.sampled_from(DAYS)),
        min_size=1,
        max_size=3,
    ).map(lambda items: ",".join(n + d for n, d in items)),
    "BYHOUR": _ints(-1, 25, size=24),
    "BYMINUTE": _ints(0, 60, size=60),
    "BYSECOND": _ints(0, 60, size=10),
    "BYSETPOS": _ints(-3, 3),
    "BYYEARDAY": _ints(-366, 366),
    "WKST": st.sampled_from([*DAYS, "XX"]),
}


@st.composite
def rrules(draw: st.DrawFn) -> str:
    parts = [f"FREQ={draw(st.sampled_from(FREQS))}"]
    for name in draw(st.lists(st.sampled_from(sorted(RRULE_PARTS)), max_size=4, unique=True)):
        parts.append(f"{name}={draw(RRULE_PARTS[name])}")
    text = ";".join(draw(st.permutations(parts)))
    return draw(st.sampled_from([text, text.lower(), f"RRULE:{text}", text + ";"]))


def _policy(rule: str, at: time, starts_on: date | None) -> dict[str, Any]:
    return {
        "cadence": {"kind": "rrule", "rrule": rule},
        "time_of_day": at.isoformat(timespec="minutes"),
        "timezone": "Europe/Berlin",
        "starts_on": starts_on.isoformat() if starts_on else None,
    }


@FUZZ
@given(
    rule=rrules(),
    at=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    start=st.dates(date(2026, 1, 1), date(2040, 12, 31)),
)
def test_accepted_rules_are_bounded_and_plannable_from_any_start(
    rule: str, at: time, start: date
) -> None:
    try:
        canonical = check_rrule(rule)
    except ValueError:
        return  # refused with a message; nothing else may escape
    parts = dict(item.split("=", 1) for item in canonical.split(";"))
    assert parts["FREQ"] not in {"SECONDLY", "MINUTELY"}
    assert int(parts.get("COUNT", "1")) <= RRULE_MAX_COUNT
    assert not {"BYSETPOS", "BYYEARDAY"} & parts.keys()
    refused: ValidationError | None = None
    try:
        accepted = CheckinPolicyIn.model_validate(_policy(rule, at, start))
    except ValidationError as error:
        refused = error
    if refused is not None:
        assert refused.errors()[0]["loc"][:1] in {(), ("cadence",)}, refused
        return
    # What goals accepts, sessions plans: from the policy's own start, without an exception.
    policy = CheckinPolicy.model_validate(accepted.model_dump())
    since = datetime.combine(start, time(0), tzinfo=UTC)
    planned = occurrences_between(policy, start, since, since + timedelta(days=400), limit=30)
    for earlier, later in itertools.pairwise(planned):
        assert later.due_at - earlier.due_at >= timedelta(minutes=59)  # DST may eat an hour
    first_due_after(policy, start, since + timedelta(days=3650))


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ("FREQ=SECONDLY", "more often than hourly"),
        ("FREQ=MINUTELY;INTERVAL=59", "more often than hourly"),
        ("FREQ=HOURLY;BYMINUTE=0,30", "more often than hourly"),
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0,1,2", "more often than hourly"),
        ("FREQ=DAILY;COUNT=1000000000", "COUNT"),
        ("FREQ=DAILY;INTERVAL=1000000000", "INTERVAL"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never"),
        ("FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31", "never"),
        ("FREQ=MONTHLY;BYDAY=6MO", "numbered BYDAY"),
        ("FREQ=YEARLY;BYSETPOS=1;BYDAY=MO", "not supported"),
        ("FREQ=YEARLY;BYWEEKNO=53", "not supported"),
        ("FREQ=DAILY;UNTIL=20000102", "never|past"),
        ("DTSTART:20300101T000000Z\nFREQ=DAILY", "one RRULE"),
        ("FREQ=DAILY;FREQ=HOURLY", "repeated"),
    ],
)
def test_known_rrule_bombs_are_refused(rule: str, why: str) -> None:
    """Refused by the rule check, or by the policy that anchors it (goals' input model)."""
    message = ""
    try:
        check_rrule(rule)
        CheckinPolicyIn.model_validate(_policy(rule, time(9), date(2030, 1, 1)))
    except ValueError as error:  # pydantic's ValidationError is a ValueError too
        message = str(error)
    assert re.search(why, message), (rule, message)


def test_a_rule_that_cannot_fire_at_the_policys_time_of_day_is_refused() -> None:
    """Every 48 hours at midnight fires from a midnight start, never from 09:00: goals
    refuses the policy (naming the cadence); sessions, should such a policy ever reach
    it, plans no occurrence instead of failing on every event of the goal."""
    rule = "FREQ=HOURLY;INTERVAL=48;BYMONTH=2;BYMONTHDAY=29;BYHOUR=0"
    assert check_rrule(rule)  # the rule alone is fine
    with pytest.raises(ValidationError, match="time_of_day"):
        CheckinPolicyIn.model_validate(_policy(rule, time(9), None))
    CheckinPolicyIn.model_validate(_policy(rule, time(0), None))
    late = CheckinPolicy.model_validate(_policy(rule, time(9), date(2030, 1, 1)))
    assert first_due_after(late, date(2030, 1, 1), datetime(2030, 1, 1, tzinfo=UTC)) is None
