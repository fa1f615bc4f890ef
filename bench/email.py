"""Email: 1,000 emails through the service's SMTP pool to a local aiosmtpd.

The embedded stack with its SMTP host pointed at a counting aiosmtpd server
(its own process). 500 goals, each with a mentee and a mentor, are created
active by batch ingestion; then one batch completes all 500: every
``goal.completed`` emails everyone on the goal (the default rule), 1,000
emails. The figures: emails a second from the completing POST to the last
message, and how many SMTP connections were opened to send them (the pool's
reuse).

    python -m bench.email [--postgres] [--quick]
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import orjson

from bench.ingest import PARTICIPANTS
from bench.lib import results
from bench.lib.options import database_name, install_loop, parser
from bench.lib.phase import load_average
from bench.lib.results import headline
from bench.lib.smtp import CountingSmtp
from bench.lib.stack import RunningStack, embedded_stack

GOALS = 500


def _batch(kind: str, refs: list[str], data: Any) -> bytes:
    return orjson.dumps(
        [
            {
                "specversion": "1.0",
                "id": uuid.uuid4().hex,
                "source": "/bench/email",
                "type": kind,
                "data": data(ref),
            }
            for ref in refs
        ]
    )


async def scenario(stack: RunningStack, smtp: CountingSmtp, *, goals: int) -> dict[str, Any]:
    headers = {**stack.headers(), "content-type": "application/json"}
    refs = [f"mail-{n}" for n in range(goals)]
    async with httpx.AsyncClient(timeout=120) as client:

        async def post(body: bytes) -> None:
            response = await client.post(f"{stack.goals}/v1/events", content=body, headers=headers)
            response.raise_for_status()
            if response.json()["rejected"]:
                raise RuntimeError(response.text[:300])

        await post(
            _batch(
                "ingest.goal.upserted",
                refs,
                lambda ref: {
                    "external_ref": ref,
                    "title": f"Goal {ref}",
                    "status": "active",
                    "participants": PARTICIPANTS,
                },
            )
        )
        await asyncio.sleep(3)  # let the creations pass through (they email nobody)
        sessions_before = smtp.value("sessions")
        load = load_average()
        started = time.time()
        await post(
            _batch("ingest.goal.completed", refs, lambda ref: {"goal": {"external_ref": ref}})
        )
        wanted = goals * len(PARTICIPANTS)
        deadline = time.time() + 120
        while time.time() < deadline:
            if smtp.value("messages") >= wanted:
                break
            await asyncio.sleep(0.1)
    received = smtp.value("messages")
    last = smtp.value("last_at") or time.time()
    opened = smtp.value("sessions") - sessions_before
    return {
        "emails_expected": wanted,
        "emails_received": received,
        "seconds_from_post": round(last - started, 2),
        "seconds_first_to_last": round(last - smtp.value("first_at"), 2),
        "emails_per_second": round(received / max(last - started, 1e-9), 1),
        "smtp_connections_opened": opened,
        "emails_per_connection": round(received / max(opened, 1), 1),
        "load_average": [load, load_average()],
    }


def main() -> None:
    args = parser(__doc__).parse_args()
    install_loop()
    started = time.time()
    smtp = CountingSmtp()
    smtp.start()
    try:
        env = {"NOTIFICATIONS_SMTP_PORT": str(smtp.port), "NOTIFICATIONS_SMTP_HOST": "127.0.0.1"}
        with embedded_stack(postgres=args.postgres, extra_env=env) as stack:
            figures = asyncio.run(scenario(stack, smtp, goals=100 if args.quick else GOALS))
    finally:
        smtp.stop()
    complete = figures["emails_received"] == figures["emails_expected"]
    results.write(
        "email",
        figures,
        headlines=[
            headline("emails per second", figures["emails_per_second"], "emails/s", "", None),
            headline(
                "emails delivered",
                f"{figures['emails_received']}/{figures['emails_expected']}",
                "",
                "all",
                complete,
            ),
            headline("SMTP connections opened", figures["smtp_connections_opened"], "", "", None),
        ],
        database=database_name(args.postgres),
        void=not complete,
        notes="500 goal.completed to mentee and mentor each (default rule), SMTP_POOL_SIZE=4",
        started_at=started,
    )


if __name__ == "__main__":
    main()
