"""Route dependencies every service declares the same way: its components on ``app.state``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request


def from_app_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency answering what the composition root put on ``app.state`` under ``name``.

    Routes declare it as ``Annotated[GoalsService, Depends(from_app_state("goals"))]``, so the
    type a route sees is the annotation's. It is async on purpose: FastAPI runs a plain
    ``def`` dependency on its thread pool, a thread hop per request for one attribute read.
    """

    async def component(request: Request) -> Any:
        return getattr(request.app.state, name)

    component.__name__ = f"app_state_{name}"
    return component
