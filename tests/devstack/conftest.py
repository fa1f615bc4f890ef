"""The supervised stack under its short name for this folder's tests."""

from __future__ import annotations

import pytest

from tests.support.devstack import SupervisedStack, supervised_stack

__all__ = ["stack", "supervised_stack"]


@pytest.fixture
def stack(supervised_stack: SupervisedStack) -> SupervisedStack:
    return supervised_stack
