"""The console's pure parts: the chart's geometry, cookie sealing, safe redirects, revocations."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from services.console.chart import build_chart, nice_ceiling
from services.console.models import DeliveryOutcomes, OutcomeBucket
from services.console.signin import Revocations, Sealer, Session
from services.console.web import local_path

START = datetime(2026, 5, 4, 0, tzinfo=UTC)


def outcomes(counts: list[dict[str, int]]) -> DeliveryOutcomes:
    statuses = sorted({status for bucket in counts for status in bucket})
    return DeliveryOutcomes(
        since=START,
        until=START + timedelta(hours=len(counts)),
        bucket_seconds=3600,
        statuses=statuses,
        totals={s: sum(b.get(s, 0) for b in counts) for s in statuses},
        buckets=[
            OutcomeBucket(start=START + timedelta(hours=n), counts=bucket)
            for n, bucket in enumerate(counts)
        ],
    )


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (11, 20), (48, 50), (51, 100)]
)
def test_the_scale_ends_on_a_round_number(value: int, ceiling: int) -> None:
    assert nice_ceiling(value) == ceiling


def test_bars_stack_their_outcomes_to_scale_from_the_baseline() -> None:
    chart = build_chart(
        outcomes([{"succeeded": 6, "failed": 2}, {}, {"superseded": 1, "succeeded": 1}])
    )
    assert chart.statuses == ["succeeded", "failed", "superseded"]  # display order
    assert chart.totals == {"succeeded": 7, "failed": 2, "superseded": 1}
    first, empty, last = chart.bars
    assert [s.status for s in first.segments] == ["succeeded", "failed"]
    plot = chart.baseline - chart.ticks[-1].y  # the peak, 10, is the top tick
    assert chart.ticks[-1].label == "10"
    assert first.segments[0].height == pytest.approx(plot * 0.6)
    assert first.segments[0].y + first.segments[0].height == pytest.approx(chart.baseline)
    assert first.segments[1].y + first.segments[1].height == pytest.approx(first.segments[0].y)
    assert empty.segments == []
    assert empty.title == "01:00 UTC: nothing"
    assert last.title == "02:00 UTC: 1 succeeded, 1 superseded"
    assert first.x < empty.x < last.x
    assert chart.summary == "10 deliveries in the last 3 hours: 7 succeeded, 2 failed, 1 superseded"
    assert not chart.empty


def test_an_empty_day_says_so() -> None:
    chart = build_chart(outcomes([{} for _ in range(24)]))
    assert chart.empty
    assert chart.summary == "No deliveries in the last 24 hours."
    assert [t.label for t in chart.ticks] == ["0", "1"]


def test_sealed_values_open_only_unchanged_and_for_their_purpose() -> None:
    sealer = Sealer("a secret of the deployment")
    sealed = sealer.seal("session", {"tok": "credential"})
    assert "credential" not in sealed
    assert sealer.open("session", sealed) == {"tok": "credential"}
    assert sealer.open("secret", sealed) is None  # sealed for another purpose
    assert Sealer("another deployment's secret").open("session", sealed) is None
    tampered = sealed[:10] + ("A" if sealed[10] != "A" else "B") + sealed[11:]
    assert sealer.open("session", tampered) is None
    assert sealer.open("session", "not base64 at all!") is None
    assert sealer.open("session", None) is None


def test_sessions_expire_and_revocations_last_until_then() -> None:
    session = Session.new("tok", "acme", lifetime=3600, credential_expires=time.time() + 60)
    assert session.expires_at <= time.time() + 60  # never outlives its credential
    assert Session.from_cookie(session.to_cookie()) == session
    assert Session.from_cookie({**session.to_cookie(), "exp": time.time() - 1}) is None
    assert Session.from_cookie({"sid": "x"}) is None
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches("")
    assert not session.csrf_matches(None)
    revocations = Revocations()
    revocations.revoke(session)
    assert revocations.revoked(session.id)
    gone = Session.new("tok", "acme", lifetime=-1, credential_expires=time.time() + 60)
    revocations.revoke(gone)
    assert not revocations.revoked(gone.id)  # already expired: nothing to remember


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("/goals?status=paused", "/goals?status=paused"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_only_local_paths_are_redirected_to(given: str | None, safe: str) -> None:
    assert local_path(given) == safe
