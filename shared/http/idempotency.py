"""``Idempotency-Key`` for every POST, as an ASGI middleware shared by all services.

The first request with a key runs and its response (2xx or 4xx) is stored
against (tenant, key) with a hash of the request; a retry with the same key
and the same request gets that response replayed (``Idempotent-Replayed:
true``), the same key with a different request answers 422, and a retry while
the first is still running answers 409. A 5xx or a 429 (rate limited) is not
stored, so the client may retry. A key is claimed before the request runs, so two concurrent
requests with one key never both run. The response is stored before it is
sent, so a client that retries the moment it has an answer gets the replay,
never a spurious "still in progress".

A claim is a lease: a request that runs longer than a few seconds renews it,
and a claim not renewed for ``CLAIM_LEASE`` belonged to a process that died
mid-request (a crash, ``kill -9``, a lost container). The next retry takes it
over and runs, rather than hearing "in progress" for a request nobody runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth.tokens import AuthError, TokenVerifier
from shared.db.database import Database
from shared.db.tables import idempotency_keys
from shared.events.envelope import utc_now
from shared.http.problems import problem_response
from shared.logs import get_logger

log = get_logger(__name__)

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
CLAIM_LEASE = timedelta(seconds=10)
RENEW_EVERY_SECONDS = CLAIM_LEASE.total_seconds() / 3  # two renewals may fail before it lapses
RETENTION = timedelta(hours=24)
_REPLAYED_HEADERS = frozenset({b"content-type", b"location", b"etag"})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        raw_key = headers.get(b"idempotency-key")
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not KEY_PATTERN.match(key):
            await problem_response(
                400,
                detail="Idempotency-Key must be 1-255 visible ASCII characters",
                slug="invalid-idempotency-key",
                instance=scope.get("path"),
            )(scope, receive, send)
            return
        tenant = _tenant_of(scope, headers.get(b"authorization"))
        if tenant is None:  # the route's own auth answers 401/403
            await self.app(scope, receive, send)
            return
        try:
            body, more = await _read_body(receive)
        except HTTPException as error:  # e.g. the body limit, raised while we read
            await problem_response(
                error.status_code,
                detail=str(error.detail),
                slug="payload-too-large" if error.status_code == 413 else None,
                instance=scope.get("path"),
            )(scope, receive, send)
            return
        request_hash = _hash(scope, body)
        database: Database = scope["app"].state.runtime.database
        claim = await _claim(database, tenant, key, scope, request_hash)
        if claim is not None:
            await claim(scope, receive, send)
            return
        await self._run_and_store(database, tenant, key, scope, body, more, send)

    async def _run_and_store(
        self,
        database: Database,
        tenant: str,
        key: str,
        scope: Scope,
        body: bytes,
        more: list[Message],
        send: Send,
    ) -> None:
        replay = [{"type": "http.request", "body": body, "more_body": False}, *more]

        async def replay_receive() -> Message:
            if replay:
                return replay.pop(0)
            return {"type": "http.disconnect"}

        status = 500
        stored_headers: dict[str, str] = {}
        chunks: list[bytes] = []
        held: list[Message] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() in _REPLAYED_HEADERS:
                        stored_headers[name.decode("latin-1")] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            held.append(message)

        try:
            async with _renewed(database, tenant, key):
                await self.app(scope, replay_receive, capture)
        except BaseException:
            await _release(database, tenant, key)
            raise
        if status >= 500 or status == 429:  # worth retrying: never replay it
            await _release(database, tenant, key)
        else:
            async with database.transaction() as session:
                await session.execute(
                    update(idempotency_keys)
                    .where(idempotency_keys.c.tenant_id == tenant, idempotency_keys.c.key == key)
                    .values(
                        status_code=status,
                        response_body=b"".join(chunks),
                        response_headers=stored_headers,
                        completed_at=utc_now(),
                    )
                )
        for message in held:
            await send(message)


def _tenant_of(scope: Scope, authorization: bytes | None) -> str | None:
    if not authorization or not authorization.lower().startswith(b"bearer "):
        return None
    verifier: TokenVerifier = scope["app"].state.verifier
    try:
        return verifier.verify(authorization[7:].decode("latin-1").strip()).tenant_id
    except AuthError:
        return None


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), [message]
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts), []


def _hash(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(scope.get("method", "").encode())
    digest.update(b"\0" + scope.get("path", "").encode())
    digest.update(b"\0" + scope.get("query_string", b""))
    digest.update(b"\0" + body)
    return digest.hexdigest()


async def _claim(
    database: Database, tenant: str, key: str, scope: Scope, request_hash: str
) -> Response | None:
    """Claim the key; None when this request should run, else the response to send instead."""
    now = utc_now()
    claim = insert(idempotency_keys).values(
        tenant_id=tenant,
        key=key,
        method=scope.get("method", ""),
        path=scope.get("path", "")[:2000],
        request_hash=request_hash,
        created_at=now,
        claimed_until=now + CLAIM_LEASE,
    )
    try:
        async with database.transaction() as session:
            await session.execute(claim)
        return None
    except IntegrityError:
        pass
    async with database.transaction() as session:
        row = (
            await session.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.tenant_id == tenant, idempotency_keys.c.key == key
                )
            )
        ).one_or_none()
        if row is None:  # released between our insert and this read
            await session.execute(claim)
            return None
        path = scope.get("path")
        if row.request_hash != request_hash:
            return problem_response(
                422,
                detail="this Idempotency-Key was used with a different request",
                slug="idempotency-key-reused",
                instance=path,
            )
        if row.status_code is not None:
            headers = dict(row.response_headers or {})
            headers["Idempotent-Replayed"] = "true"
            return Response(row.response_body or b"", status_code=row.status_code, headers=headers)
        if now < _lapses_at(row.claimed_until, row.created_at):
            return _in_progress(path)
        taken = await session.execute(  # only one of several retries takes a lapsed claim
            update(idempotency_keys)
            .where(
                *_unanswered(tenant, key),
                or_(
                    idempotency_keys.c.claimed_until.is_(None),
                    idempotency_keys.c.claimed_until <= now,
                ),
            )
            .values(claimed_until=now + CLAIM_LEASE)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return _in_progress(path)
        log.warning("idempotency.claim.taken_over", tenant=tenant, path=path)
        return None


def _unanswered(tenant: str, key: str) -> tuple[ColumnElement[bool], ...]:
    """The claim on this key, while its request has not answered yet."""
    return (
        idempotency_keys.c.tenant_id == tenant,
        idempotency_keys.c.key == key,
        idempotency_keys.c.status_code.is_(None),
    )


def _in_progress(path: str | None) -> Response:
    return problem_response(
        409,
        detail="a request with this Idempotency-Key is still in progress",
        slug="idempotency-key-in-progress",
        instance=path,
        headers={"Retry-After": "1"},
    )


def _lapses_at(claimed_until: datetime | None, created_at: datetime) -> datetime:
    """When a claim stops holding (one written before leases lapses a lease after its start)."""
    return claimed_until if claimed_until is not None else created_at + CLAIM_LEASE


@contextlib.asynccontextmanager
async def _renewed(database: Database, tenant: str, key: str) -> AsyncIterator[None]:
    """Keep the claim alive while the request runs; a quick request writes nothing more."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY_SECONDS)
            try:
                async with database.transaction() as session:
                    await session.execute(
                        update(idempotency_keys)
                        .where(
                            *_unanswered(tenant, key),
                        )
                        .values(claimed_until=utc_now() + CLAIM_LEASE)
                    )
            except Exception as error:  # the next renewal may get through
                log.warning("idempotency.claim.renewal_failed", error=repr(error))

    renewing = asyncio.create_task(renew(), name="idempotency-claim-renewal")
    try:
        yield
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing


async def _release(database: Database, tenant: str, key: str) -> None:
    async with database.transaction() as session:
        await session.execute(
            delete(idempotency_keys).where(
                *_unanswered(tenant, key),
            )
        )


async def purge_expired(database: Database) -> int:
    async with database.transaction() as session:
        result = await session.execute(
            delete(idempotency_keys).where(idempotency_keys.c.created_at < utc_now() - RETENTION)
        )
        return int(getattr(result, "rowcount", 0) or 0)
