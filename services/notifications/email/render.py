"""Rendering an email: templates (ours or the tenant's), signed links, and the MIME message.

Our templates are files under ``templates/<event type>/`` beside this module (subject,
text and HTML) with a generic fallback. A tenant may override any type; their
templates are untrusted input, so they compile and render in Jinja2's
sandbox, and a template that fails at render time falls back to ours rather
than losing the email.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import (
    ChainableUndefined,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from services.notifications.email.invites import Invite
from services.notifications.email.rules import MISS_TYPES
from services.notifications.settings import NotificationsSettings
from shared.auth.links import sign_link
from shared.logs import get_logger

log = get_logger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
GENERIC = "_generic"
HEADER_POLICY = email.policy.SMTP.clone(max_line_length=998)
"""CRLF, and lines up to RFC 5322's limit, so a long List-Unsubscribe URL is never encoded."""
PARTS = ("subject.txt", "body.txt", "body.html")
CALENDAR_LINK_TYPES = frozenset({"checkin.due_soon", "session.reminder"})
"""Emails that carry an "add to calendar" link to the recipient's feed of the goal."""


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class TemplateOverride:
    subject: str
    text: str
    html: str


def _local(zone: str) -> Any:
    def render(value: Any) -> str:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(moment, datetime):
            return str(value)
        local = moment.astimezone(ZoneInfo(zone))
        return local.strftime("%a %d %b %Y, %H:%M %Z")

    return render


def _localdate(zone: str) -> Any:
    def render(value: Any) -> str:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(moment, datetime):
            return str(value)
        return moment.astimezone(ZoneInfo(zone)).strftime("%d %b %Y")

    return render


def _environments() -> tuple[Environment, SandboxedEnvironment, SandboxedEnvironment]:
    files = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )
    sandbox_text = SandboxedEnvironment(autoescape=False, undefined=ChainableUndefined)
    sandbox_html = SandboxedEnvironment(autoescape=True, undefined=ChainableUndefined)
    return files, sandbox_text, sandbox_html


def check_override(subject: str, text: str, html: str) -> list[dict[str, str]]:
    """Syntax errors of a tenant's templates, as problem field errors (empty when fine)."""
    _, sandbox_text, sandbox_html = _environments()
    errors = []
    for field, source, env in (
        ("subject", subject, sandbox_text),
        ("text", text, sandbox_text),
        ("html", html, sandbox_html),
    ):
        try:
            env.from_string(source)
        except TemplateError as error:
            errors.append({"field": f"body.{field}", "message": f"template error: {error}"})
    return errors


class EmailRenderer:
    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self._files, self._sandbox_text, self._sandbox_html = _environments()
        self._link_secret = settings.link_signing_secret.get_secret_value()

    def links(
        self,
        *,
        tenant_id: str,
        event_type: str,
        recipient: dict[str, Any],
        goal_id: str | None,
        occurrence_id: str | None,
        now: datetime,
    ) -> dict[str, str | None]:
        email = str(recipient["email"])
        unsubscribe = sign_link(
            self._link_secret,
            action="unsubscribe",
            tenant_id=tenant_id,
            subject=email,
            claims={"email": email, "type": event_type},
            ttl=timedelta(days=self._settings.unsubscribe_link_days),
            now=now,
        )
        base = self._settings.public_base_url.rstrip("/")
        links: dict[str, str | None] = {
            "unsubscribe": f"{base}/v1/unsubscribe?token={quote(unsubscribe)}",
            "checkin": None,
            "acknowledge": None,
            "snooze": None,
            "calendar": None,
        }
        if goal_id and occurrence_id and event_type in MISS_TYPES | {"checkin.due_soon"}:
            sessions = self._settings.sessions_public_url.rstrip("/")
            for action in ("checkin", "acknowledge", "snooze"):
                token = sign_link(
                    self._link_secret,
                    action=action,
                    tenant_id=tenant_id,
                    subject=goal_id,
                    claims={"occ": occurrence_id, "role": recipient.get("role")},
                    ttl=timedelta(days=self._settings.action_link_days),
                    now=now,
                )
                links[action] = f"{sessions}/v1/links/{action}?token={quote(token)}"
        if goal_id and event_type in CALENDAR_LINK_TYPES:
            sessions = self._settings.sessions_public_url.rstrip("/")
            token = sign_link(
                self._link_secret,
                action="calendar-subscribe",
                tenant_id=tenant_id,
                subject=goal_id,
                claims={"email": email},
                ttl=timedelta(days=self._settings.action_link_days),
                now=now,
            )
            links["calendar"] = f"{sessions}/v1/links/calendar?token={quote(token)}"
        return links

    def render(
        self, event_type: str, context: dict[str, Any], override: TemplateOverride | None
    ) -> Rendered:
        zone = str(context["recipient"].get("timezone") or "UTC")
        if override is not None:
            try:
                return self._render_override(override, context, zone)
            except (TemplateError, ValueError, TypeError) as error:
                log.warning(
                    "email.template.override_failed", event_type=event_type, error=repr(error)
                )
        folder = event_type if (TEMPLATES / event_type).is_dir() else GENERIC
        self._files.filters["local"] = _local(zone)
        self._files.filters["localdate"] = _localdate(zone)
        try:
            subject = self._files.get_template(f"{folder}/subject.txt").render(context)
            full = {**context, "subject": subject}
            text = self._files.get_template(f"{folder}/body.txt").render(full)
            html = self._files.get_template(f"{folder}/body.html").render(full)
        except TemplateNotFound:  # pragma: no cover - every folder has all parts
            raise
        return Rendered(clean_subject(subject), text.strip() + "\n", html)

    def _render_override(
        self, override: TemplateOverride, context: dict[str, Any], zone: str
    ) -> Rendered:
        for env in (self._sandbox_text, self._sandbox_html):
            env.filters["local"] = _local(zone)
            env.filters["localdate"] = _localdate(zone)
        subject = self._sandbox_text.from_string(override.subject).render(context)
        full = {**context, "subject": subject}
        text = self._sandbox_text.from_string(override.text).render(full)
        html = self._sandbox_html.from_string(override.html).render(full)
        return Rendered(clean_subject(subject), text.strip() + "\n", html)


def clean_subject(subject: str) -> str:
    """One line, bounded: a subject can never inject a header."""
    return " ".join(subject.split())[:200] or "Followthrough"


def compose(
    *,
    settings: NotificationsSettings,
    rendered: Rendered,
    recipient: dict[str, Any],
    unsubscribe_url: str,
    message_id: str,
    event_id: str,
    event_type: str,
    now: datetime,
    invite: Invite | None = None,
) -> EmailMessage:
    """The MIME message: multipart/alternative (text, HTML) with RFC 8058 one-click unsubscribe.

    A session email's iTIP invitation is a third alternative, ``text/calendar;
    method=REQUEST`` (or ``CANCEL``), which is where mail clients look for it.
    """
    message = EmailMessage(policy=HEADER_POLICY)
    message["From"] = settings.email_from
    name = " ".join(str(recipient.get("name") or "").split())
    message["To"] = formataddr((name, str(recipient["email"])))
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{message_id}@{settings.email_message_id_domain}>"
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Followthrough-Event-Id"] = event_id
    message["X-Followthrough-Event-Type"] = event_type
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    if invite is not None:
        message.add_alternative(
            invite.body,
            maintype="text",
            subtype="calendar",
            params={"method": invite.method, "charset": "utf-8"},
        )
    return message
