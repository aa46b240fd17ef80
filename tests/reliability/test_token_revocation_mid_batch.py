"""A token refreshed elsewhere while a batch is running: every call still succeeds, on a few
token fetches.

``state.revoke_tokens`` makes every token of the account answer 40001 at once, which is what
the callers of a batch see when another system fetches a new token (classic API) or forces a
stable_token refresh. Hundreds of calls are in flight with the old token then; each of them
gets 40001, and the single-flight refresh with compare-and-delete must turn that into *one*
new token, not one per call.
"""

from __future__ import annotations

import io

import anyio
import pytest
import segno

import wxqr
import wxqr.sandbox._wxacode as sandbox_wxacode
from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState, sandbox_client

N = 500
REVOKE_AFTER = 150
UNLIMITED = "wxa/getwxacodeunlimit"


def lean_qr_png(content, *, width=430, dark=(0, 0, 0), transparent=False):
    # Same QR content as the sandbox's drawing, without its ~6 ms mask search and 430 px size.
    out = io.BytesIO()
    segno.make_qr(content, error="m", boost_error=False, mask=0).save(out, kind="png", scale=1)
    return out.getvalue()


@pytest.fixture
def lean_images(monkeypatch):
    monkeypatch.setattr(sandbox_wxacode, "qr_png", lean_qr_png)


@pytest.mark.anyio
@pytest.mark.parametrize("stable", [True, False], ids=["stable_token", "classic_token"])
async def test_revocation_during_a_batch_costs_few_fetches(
    sandbox_server, lean_images, anyio_backend, stable
):
    state = SandboxState(seed=3)
    state.default_account.unlimited_per_minute = 10**6
    if anyio_backend == "asyncio":  # real sockets, the aiohttp transport
        sandbox_server.use(state)
        base = sandbox_server.base_url
        client = wxqr.Client(
            DEFAULT_APPID,
            DEFAULT_SECRET,
            api_base_url=base,
            mp_base_url=base,
            stable_token=stable,
            rate_limits={},
            retry_backoff=0.01,
        )
    else:  # trio: httpcore in-process (ASGITransport)
        client = sandbox_client(state, stable_token=stable, rate_limits={}, retry_backoff=0.01)
    images: dict[int, bytes] = {}

    async def one(i: int) -> None:
        images[i] = await client.wxacode.get_unlimited(scene=f"r{i}")
        # Revoked by the caller that completes the 150th call, not by a polling task: all
        # callers share one token fetch and start together, and on trio in-process they may
        # run to completion without letting a poller in.
        if len(images) == REVOKE_AFTER:
            state.revoke_tokens(DEFAULT_APPID)

    async with client:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(N):
                    tg.start_soon(one, i)

    assert len(images) == N
    assert len(set(images.values())) == N
    rejected = [r for r in state.requests if r.endpoint == UNLIMITED and r.errcode == 40001]
    assert rejected, "the revocation hit no call in flight: the test proved nothing"
    assert state.calls[UNLIMITED] == N + len(rejected)  # each rejected call resent once
    fetches = sum(state.token_fetches.values())
    assert 2 <= fetches <= 3, state.token_fetches
