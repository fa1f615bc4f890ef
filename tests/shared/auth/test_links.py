"""Signed links judged by a service's own clock: a link signed at the service's time is valid
until its expiry by that same clock, whatever the system clock says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.auth.links import LinkError, sign_link, verify_link

SECRET = "test-link-secret-0123456789abcdef"


def test_expiry_and_issue_time_follow_the_given_clock() -> None:
    issued = datetime(2031, 1, 1, tzinfo=UTC)  # in the system clock's future
    token = sign_link(
        SECRET, action="calendar", tenant_id="acme", subject="f", ttl=timedelta(days=1), now=issued
    )
    claims = verify_link(SECRET, token, action="calendar", now=issued + timedelta(hours=23))
    assert claims["sub"] == "f"
    with pytest.raises(LinkError, match="expired"):
        verify_link(SECRET, token, action="calendar", now=issued + timedelta(days=1))
    # Without a clock the system's decides: issued in its future, so not (yet) valid.
    with pytest.raises(LinkError, match="not valid"):
        verify_link(SECRET, token, action="calendar")
    with pytest.raises(LinkError, match="another action"):
        verify_link(SECRET, token, action="checkin", now=issued)
    with pytest.raises(LinkError, match="not valid"):
        verify_link(SECRET + "x", token, action="calendar", now=issued)


def test_past_links_expire_by_the_system_clock_without_one() -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    token = sign_link(
        SECRET, action="calendar", tenant_id="acme", subject="f", ttl=timedelta(days=1), now=old
    )
    with pytest.raises(LinkError, match="expired"):
        verify_link(SECRET, token, action="calendar")
    assert verify_link(SECRET, token, action="calendar", now=old)["tenant"] == "acme"
