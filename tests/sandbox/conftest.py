"""Fixtures for the sandbox's own tests: a seeded state on a frozen clock, a raw httpx client."""

from __future__ import annotations

import pytest
from sandbox_helpers import T0

from wxqr.sandbox import SandboxState, VirtualClock, sandbox_http_client

# The plugin's fixtures, for runs where wxqr is not installed (no pytest11 entry point).
from wxqr.sandbox.pytest_plugin import wechat_sandbox, wechat_sandbox_state  # noqa: F401


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=7, clock=VirtualClock(T0, frozen=True))


@pytest.fixture
async def http(state):
    async with sandbox_http_client(state) as client:
        yield client


@pytest.fixture
def token(state) -> str:
    return state.issue_token()
