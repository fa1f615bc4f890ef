"""Email configuration: per-tenant rules and templates, recipients' preferences, unsubscribe."""

from __future__ import annotations

from typing import Any

from services.notifications.email.render import check_override
from services.notifications.email.repository import EmailRepository
from services.notifications.email.rules import DEFAULT_RULES
from services.notifications.models import EmailRule, EmailTemplate, Preference
from services.notifications.schemas import (
    EmailRuleIn,
    EmailRuleOut,
    PreferenceIn,
    PreferenceOut,
    TemplateIn,
    TemplateOut,
    Unsubscribed,
)
from services.notifications.settings import NotificationsSettings
from shared.auth.links import LinkError, verify_link
from shared.clock import Clock
from shared.http.problems import ProblemError
from shared.logs import get_logger
from shared.runtime import ServiceRuntime

log = get_logger(__name__)


class EmailConfigService:
    def __init__(self, runtime: ServiceRuntime, settings: NotificationsSettings, clock: Clock):
        self._db = runtime.database
        self._settings = settings
        self._clock = clock

    # Rules

    async def rules(self, tenant_id: str) -> list[EmailRuleOut]:
        async with self._db.reader() as session:
            overrides = (await EmailRepository(session).rules([tenant_id]))[tenant_id]
        types = sorted(set(DEFAULT_RULES) | set(overrides))
        return [
            EmailRuleOut(
                event_type=t,
                roles=overrides.get(t, DEFAULT_RULES.get(t, [])),
                source="tenant" if t in overrides else "default",
            )
            for t in types
        ]

    async def set_rule(self, tenant_id: str, event_type: str, rule: EmailRuleIn) -> EmailRuleOut:
        roles: list[str] = [str(role) for role in dict.fromkeys(rule.roles)]
        async with self._db.transaction() as session:
            found = await EmailRepository(session).rule(tenant_id, event_type)
            if found is None:
                session.add(
                    EmailRule(
                        tenant_id=tenant_id,
                        event_type=event_type,
                        roles=roles,
                        updated_at=self._clock.now(),
                    )
                )
            else:
                found.roles, found.updated_at = roles, self._clock.now()
        return EmailRuleOut(event_type=event_type, roles=roles, source="tenant")

    async def reset_rule(self, tenant_id: str, event_type: str) -> None:
        async with self._db.transaction() as session:
            found = await EmailRepository(session).rule(tenant_id, event_type)
            if found is None:
                raise ProblemError(
                    404, f"no rule of this tenant for {event_type}", slug="not-found"
                )
            await session.delete(found)

    # Templates

    async def template(self, tenant_id: str, event_type: str) -> TemplateOut:
        async with self._db.reader() as session:
            found = await EmailRepository(session).template(tenant_id, event_type)
        if found is None:
            raise ProblemError(
                404, f"no template of this tenant for {event_type}", slug="not-found"
            )
        return _template_out(found)

    async def templates(self, tenant_id: str) -> list[TemplateOut]:
        async with self._db.reader() as session:
            return [_template_out(t) for t in await EmailRepository(session).templates(tenant_id)]

    async def set_template(
        self, tenant_id: str, event_type: str, template: TemplateIn
    ) -> TemplateOut:
        errors = check_override(template.subject, template.text, template.html)
        if errors:
            raise ProblemError(
                422,
                errors[0]["message"],
                slug="validation-error",
                title="Request validation failed",
                errors=errors,
            )
        now = self._clock.now()
        async with self._db.transaction() as session:
            found = await EmailRepository(session).template(tenant_id, event_type)
            if found is None:
                found = EmailTemplate(tenant_id=tenant_id, event_type=event_type, updated_at=now)
                session.add(found)
            found.subject, found.text, found.html = template.subject, template.text, template.html
            found.updated_at = now
        return _template_out(found)

    async def reset_template(self, tenant_id: str, event_type: str) -> None:
        async with self._db.transaction() as session:
            found = await EmailRepository(session).template(tenant_id, event_type)
            if found is None:
                raise ProblemError(
                    404, f"no template of this tenant for {event_type}", slug="not-found"
                )
            await session.delete(found)

    # Preferences

    async def preference(self, tenant_id: str, email: str) -> PreferenceOut:
        email = email.lower()
        async with self._db.reader() as session:
            repository = EmailRepository(session)
            found = await repository.preference(tenant_id, email)
            unsubscribed = await repository.unsubscriptions(tenant_id, email)
        return self._preference_out(email, found, unsubscribed)

    async def set_preference(
        self, tenant_id: str, email: str, preference: PreferenceIn
    ) -> PreferenceOut:
        email = email.lower()
        if (preference.quiet_start is None) != (preference.quiet_end is None):
            raise ProblemError(
                422,
                "quiet_start and quiet_end go together",
                slug="validation-error",
                errors=[{"field": "body.quiet_end", "message": "give both or neither"}],
            )
        if preference.quiet_start is not None and preference.quiet_start == preference.quiet_end:
            raise ProblemError(
                422,
                "quiet hours must not be empty",
                slug="validation-error",
                errors=[{"field": "body.quiet_end", "message": "must differ from quiet_start"}],
            )
        now = self._clock.now()
        async with self._db.transaction() as session:
            repository = EmailRepository(session)
            found = await repository.preference(tenant_id, email)
            if found is None:
                found = Preference(tenant_id=tenant_id, email=email, last_digest_at=None)
                session.add(found)
            values: dict[str, Any] = preference.model_dump(exclude={"resubscribe"})
            for key, value in values.items():
                setattr(found, key, value)
            if preference.delivery == "digest" and found.last_digest_at is None:
                # The first digest covers the week from now on, not everything before.
                found.last_digest_at = now
            found.updated_at = now
            await repository.resubscribe(tenant_id, email, preference.resubscribe)
            await session.flush()
            unsubscribed = await repository.unsubscriptions(tenant_id, email)
        return self._preference_out(email, found, unsubscribed)

    def _preference_out(
        self, email: str, found: Preference | None, unsubscribed: list[str]
    ) -> PreferenceOut:
        return PreferenceOut(
            email=email,
            delivery="digest" if found and found.delivery == "digest" else "immediate",
            digest_day=(found.digest_day if found else None) or self._settings.digest_day,
            digest_hour=(
                found.digest_hour
                if found and found.digest_hour is not None
                else self._settings.digest_hour
            ),
            timezone=found.timezone if found else None,
            quiet_start=found.quiet_start if found else None,
            quiet_end=found.quiet_end if found else None,
            unsubscribed=unsubscribed,
            last_digest_at=found.last_digest_at if found else None,
        )

    # Unsubscribe (the link is the credential)

    def _claims(self, token: str) -> tuple[str, str, str]:
        try:
            claims = verify_link(
                self._settings.link_signing_secret.get_secret_value(), token, action="unsubscribe"
            )
        except LinkError as error:
            raise ProblemError(
                400, f"unsubscribe link: {error}", slug="invalid-link", title="Invalid link"
            ) from None
        email, event_type = claims.get("email"), claims.get("type")
        if not isinstance(email, str) or not isinstance(event_type, str):
            raise ProblemError(400, "unsubscribe link: incomplete", slug="invalid-link")
        return str(claims["tenant"]), email.lower(), event_type

    def describe(self, token: str) -> Unsubscribed:
        _, _, event_type = self._claims(token)
        return Unsubscribed(unsubscribed=False, event_type=event_type)

    async def unsubscribe(self, token: str) -> Unsubscribed:
        tenant_id, email, event_type = self._claims(token)
        async with self._db.transaction() as session:
            await EmailRepository(session).unsubscribe(
                tenant_id, email, event_type, self._clock.now()
            )
        log.info("email.unsubscribed", event_type=event_type)
        return Unsubscribed(unsubscribed=True, event_type=event_type)


def _template_out(template: EmailTemplate) -> TemplateOut:
    return TemplateOut(
        event_type=template.event_type,
        subject=template.subject,
        text=template.text,
        html=template.html,
        updated_at=template.updated_at,
    )
