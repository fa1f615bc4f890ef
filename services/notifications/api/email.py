"""HTTP routes for email: tenant rules and templates, recipients' preferences, unsubscribe."""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.responses import HTMLResponse
from pydantic import EmailStr

from services.notifications.api.deps import Email, Reader, Writer
from services.notifications.schemas import (
    EmailRuleIn,
    EmailRuleOut,
    PreferenceIn,
    PreferenceOut,
    TemplateIn,
    TemplateOut,
    Unsubscribed,
)
from shared.http.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["email"])

EventTypePath = Annotated[str, Path(pattern=r"^[a-z_]+\.[a-z_]+$", max_length=100)]
Token = Annotated[str, Query(min_length=1, max_length=4000, description="The signed link token.")]


@router.get(
    "/email-rules",
    response_model=list[EmailRuleOut],
    summary="Which roles are emailed about which event types (defaults and overrides)",
)
async def list_rules(principal: Reader, email: Email) -> list[EmailRuleOut]:
    return await email.rules(principal.tenant_id)


@router.put(
    "/email-rules/{event_type}",
    response_model=EmailRuleOut,
    summary="Override the roles emailed about one event type",
)
async def set_rule(
    event_type: EventTypePath, payload: EmailRuleIn, principal: Writer, email: Email
) -> EmailRuleOut:
    return await email.set_rule(principal.tenant_id, event_type, payload)


@router.delete(
    "/email-rules/{event_type}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Return one event type to the default rule",
    responses=problem_responses(404),
)
async def reset_rule(event_type: EventTypePath, principal: Writer, email: Email) -> None:
    await email.reset_rule(principal.tenant_id, event_type)


@router.get(
    "/templates", response_model=list[TemplateOut], summary="This tenant's template overrides"
)
async def list_templates(principal: Reader, email: Email) -> list[TemplateOut]:
    return await email.templates(principal.tenant_id)


@router.get(
    "/templates/{event_type}",
    response_model=TemplateOut,
    summary="Read one template override",
    responses=problem_responses(404),
)
async def get_template(event_type: EventTypePath, principal: Reader, email: Email) -> TemplateOut:
    return await email.template(principal.tenant_id, event_type)


@router.put(
    "/templates/{event_type}",
    response_model=TemplateOut,
    summary="Override one event type's email (Jinja2, rendered in a sandbox)",
)
async def set_template(
    event_type: EventTypePath, payload: TemplateIn, principal: Writer, email: Email
) -> TemplateOut:
    return await email.set_template(principal.tenant_id, event_type, payload)


@router.delete(
    "/templates/{event_type}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Return one event type to the built-in template",
    responses=problem_responses(404),
)
async def reset_template(event_type: EventTypePath, principal: Writer, email: Email) -> None:
    await email.reset_template(principal.tenant_id, event_type)


@router.get(
    "/preferences/{address}",
    response_model=PreferenceOut,
    summary="A recipient's delivery preference, quiet hours and unsubscribes",
)
async def get_preference(address: EmailStr, principal: Reader, email: Email) -> PreferenceOut:
    return await email.preference(principal.tenant_id, str(address))


@router.put(
    "/preferences/{address}",
    response_model=PreferenceOut,
    summary="Set a recipient's preference (immediate or weekly digest, quiet hours)",
)
async def set_preference(
    address: EmailStr, payload: PreferenceIn, principal: Writer, email: Email
) -> PreferenceOut:
    return await email.set_preference(principal.tenant_id, str(address), payload)


@router.get(
    "/unsubscribe",
    response_class=HTMLResponse,
    summary="The confirmation page an unsubscribe link opens",
    description="Shows what the link unsubscribes from; nothing changes until the form is sent.",
    responses={**problem_responses(400), 200: {"content": {"text/html": {}}}},
)
async def unsubscribe_page(token: Token, email: Email) -> HTMLResponse:
    described = email.describe(token)
    kind = html.escape(described.event_type)
    action = f"/v1/unsubscribe?token={quote(token)}"
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Unsubscribe</title></head>"
        "<body style='font-family: sans-serif; max-width: 30rem; margin: 3rem auto;'>"
        f"<h1>Unsubscribe</h1><p>Stop emails about <strong>{kind}</strong>?</p>"
        f"<form method=post action='{html.escape(action, quote=True)}'>"
        "<input type=hidden name=List-Unsubscribe value=One-Click>"
        "<button type=submit>Unsubscribe</button></form></body></html>"
    )


@router.post(
    "/unsubscribe",
    response_model=Unsubscribed,
    summary="Unsubscribe (RFC 8058 one-click; the signed link is the credential)",
    responses=problem_responses(400),
)
async def unsubscribe(token: Token, email: Email) -> Unsubscribed:
    return await email.unsubscribe(token)
