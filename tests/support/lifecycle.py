"""Start a service component for the length of a block and stop it on the way out."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

from shared.runtime import Component

ComponentT = TypeVar("ComponentT", bound=Component)


@contextlib.asynccontextmanager
async def started(component: ComponentT) -> AsyncIterator[ComponentT]:
    component.start()
    try:
        yield component
    finally:
        await component.stop()
