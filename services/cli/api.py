"""Calling the services' public APIs: one credential, problem+json turned into plain messages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx


class CliError(Exception):
    """Something the operator must read: printed as ``error: ...``, exit status 1."""


class ServiceApi:
    def __init__(
        self,
        service: str,
        base_url: str,
        credential: Callable[[], str],
        *,
        timeout: float = 10.0,
    ) -> None:
        self.service = service
        self.base_url = base_url
        self._credential = credential
        self._http = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._call("GET", path, params=params)

    def post(self, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        return self._call("POST", path, params=params, body=body)

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list (``items`` and ``next_cursor``)."""
        query = dict(params or {})
        while True:
            page = self.get(path, query)
            yield from page["items"]
            if not page.get("next_cursor"):
                return
            query["cursor"] = page["next_cursor"]

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self._credential()}"}
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            answer = self._http.request(method, path, params=clean, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise CliError(
                f"{self.service} at {self.base_url} did not answer ({error!r}); "
                f"check FOLLOWTHROUGH_{self.service.upper()}_URL"
            ) from None
        if answer.status_code >= 400:
            raise CliError(f"{self.service}: {problem_text(answer)}")
        return answer.json() if answer.content else None


def problem_text(answer: httpx.Response) -> str:
    """``404 Not Found: message x not found`` from a problem document (or whatever came)."""
    try:
        problem = answer.json()
    except ValueError:
        return f"{answer.status_code} {answer.text[:200]}"
    if not isinstance(problem, dict):
        return f"{answer.status_code} {answer.text[:200]}"
    title = problem.get("title") or answer.reason_phrase
    detail = problem.get("detail")
    return f"{answer.status_code} {title}" + (f": {detail}" if detail else "")
