"""A tiny form-filling HTTP client for the console: what a browser does, without a browser.

It keeps cookies, reads the forms of the last page it got (their hidden
CSRF fields included) and submits them, so tests go through the console the
way a person does, including its CSRF checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._select: str | None = None
        self._first_option = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(values.get("action", ""), values.get("method", "get").lower())
            self.forms.append(self._current)
        elif self._current is not None and tag in ("input", "textarea") and "name" in values:
            self._current.fields[values["name"]] = values.get("value", "")
        elif self._current is not None and tag == "select" and "name" in values:
            self._select = values["name"]
            self._first_option = True
        elif self._current is not None and tag == "option" and self._select:
            # Like a browser: the selected option, else the first one.
            if self._first_option or "selected" in values:
                self._current.fields[self._select] = values.get("value", "")
            self._first_option = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "select":
            self._select = None


def forms_of(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class Browser:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False)

    async def close(self) -> None:
        await self.http.aclose()

    async def get(self, path: str, *, follow: bool = True, **kwargs: Any) -> httpx.Response:
        response = await self.http.get(path, **kwargs)
        while follow and response.is_redirect:
            response = await self.http.get(response.headers["location"])
        return response

    def form(self, page: httpx.Response, action: str) -> Form:
        matches = [f for f in forms_of(page.text) if f.action == action]
        assert matches, f"no form posting to {action} on {page.url}"
        return matches[0]

    async def submit(
        self,
        page: httpx.Response,
        action: str,
        *,
        follow: bool = True,
        named: Mapping[str, str] | None = None,
        **fields: str,
    ) -> httpx.Response:
        """Submit the page's form for ``action`` with its own fields and ``fields``.

        ``named`` takes fields whose names are not Python identifiers (``days.messages``).
        """
        values = {**self.form(page, action).fields, **(named or {}), **fields}
        response = await self.http.post(action, data=values)
        while follow and response.is_redirect:
            response = await self.http.get(response.headers["location"])
        return response

    async def sign_in(self, credential: str) -> httpx.Response:
        page = await self.get("/sign-in")
        return await self.submit(page, "/sign-in", credential=credential)
