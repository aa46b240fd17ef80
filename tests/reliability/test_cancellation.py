"""Cancellation at every stage of a call leaves the client whole.

A call is cancelled (anyio ``move_on_after``) while it waits for the token, for a concurrency
slot, for the rate limiter, during the request itself and during a retry's backoff. Afterwards
the same client must be fully usable: the next calls succeed, and -- the leak that matters --
``max_concurrency=2`` still lets exactly two requests run at once (a leaked semaphore slot would
serialise them). Runs on asyncio and trio in-process, and over real sockets on every wire (the
aiohttp wire and the httpx wire on asyncio, the httpx wire on trio: a cancelled request's
connection must be released).
"""

from __future__ import annotations

import anyio
import pytest

import wxqr
from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState, sandbox_client

UNLIMITED = "wxa/getwxacodeunlimit"
SLOW = 0.4


def make_client(state, sandbox_server, where, **options):
    options.setdefault("rate_limits", {})
    options.setdefault("retry_backoff", 0.01)
    options.setdefault("max_concurrency", 2)
    if where.startswith("socket"):
        sandbox_server.use(state)
        base = sandbox_server.base_url
        wire = "httpx" if where == "socket-httpx" else "auto"
        return wxqr.Client(
            DEFAULT_APPID, DEFAULT_SECRET, api_base_url=base, mp_base_url=base, wire=wire, **options
        )
    return sandbox_client(state, **options)


async def cancelled_call(client, delay=0.1, **kwargs):
    with anyio.move_on_after(delay) as scope:
        await client.wxacode.get_unlimited(scene="cancelled", **kwargs)
    assert scope.cancelled_caught, "the call finished before it could be cancelled"


async def assert_whole(client, state):
    """Both slots free (two slow requests overlap), nothing in flight, calls succeed."""
    assert client._transport.in_flight == 0
    with anyio.fail_after(5):
        client._transport.max_in_flight = 0
        state.faults.clear()
        state.faults.add(UNLIMITED, "latency", seconds=SLOW, times=2)
        results = []

        async def one(i):
            results.append(await client.wxacode.get_unlimited(scene=f"after{i}"))

        with anyio.fail_after(2 * SLOW - 0.05):  # serialised, they would take 2 x SLOW
            async with anyio.create_task_group() as tg:
                tg.start_soon(one, 1)
                tg.start_soon(one, 2)
    assert len(results) == 2
    assert all(wxqr.image_kind(r) == "png" for r in results)
    # Counted by the client: over a socket, the sandbox may still be serving (sleeping in)
    # requests whose callers were cancelled, so its own in-flight count says nothing here.
    assert client._transport.max_in_flight == 2
    assert client._transport.in_flight == 0


WHERE = [
    pytest.param("asyncio", "in-process", id="asyncio-in-process"),
    pytest.param("trio", "in-process", id="trio-in-process"),
    pytest.param("asyncio", "socket", id="asyncio-socket"),  # the aiohttp wire
    pytest.param("asyncio", "socket-httpx", id="asyncio-socket-httpx"),
    pytest.param("trio", "socket", id="trio-socket"),  # the httpx wire (trio's only one)
]


@pytest.mark.anyio
@pytest.mark.parametrize(("anyio_backend", "where"), WHERE)
async def test_cancel_while_fetching_the_token(sandbox_server, anyio_backend, where):
    state = SandboxState(seed=1)
    state.faults.add("cgi-bin/stable_token", "latency", seconds=1.0)
    async with make_client(state, sandbox_server, where) as client:
        # One caller is cancelled inside the fetch; another waits behind it on the
        # single-flight lock and must get a token once the first is gone.
        waiter_images = []

        async def waiter():
            waiter_images.append(await client.wxacode.get_unlimited(scene="waiter"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancelled_call, client)
            await anyio.sleep(0.02)
            tg.start_soon(waiter)
        assert len(waiter_images) == 1
        await assert_whole(client, state)


@pytest.mark.anyio
@pytest.mark.parametrize(("anyio_backend", "where"), WHERE)
async def test_cancel_while_waiting_for_a_concurrency_slot(sandbox_server, anyio_backend, where):
    state = SandboxState(seed=1)
    async with make_client(state, sandbox_server, where) as client:
        await client.access_token()
        state.faults.add(UNLIMITED, "latency", seconds=0.5, times=2)
        async with anyio.create_task_group() as tg:
            for i in range(2):  # hold both slots
                tg.start_soon(lambda i=i: client.wxacode.get_unlimited(scene=f"slow{i}"))
            await anyio.sleep(0.05)
            for _ in range(3):
                tg.start_soon(cancelled_call, client)
        assert state.calls[UNLIMITED] == 2  # the cancelled waiters never sent anything
        await assert_whole(client, state)


@pytest.mark.anyio
@pytest.mark.parametrize(("anyio_backend", "where"), WHERE)
async def test_cancel_while_rate_limited(sandbox_server, anyio_backend, where):
    state = SandboxState(seed=1)
    limits = {"getwxacodeunlimit": wxqr.RateLimit(1, 0.5)}
    async with make_client(state, sandbox_server, where, rate_limits=limits) as client:
        await client.wxacode.get_unlimited(scene="first")  # spends the budget for 0.5 s
        for _ in range(3):
            await cancelled_call(client, delay=0.05)
        assert state.calls[UNLIMITED] == 1  # the cancelled calls never reached the sandbox
        with anyio.fail_after(2):
            await client.wxacode.get_unlimited(scene="next")  # after the window, not stuck
        assert state.calls[UNLIMITED] == 2


@pytest.mark.anyio
@pytest.mark.parametrize(("anyio_backend", "where"), WHERE)
async def test_cancel_mid_request(sandbox_server, anyio_backend, where):
    state = SandboxState(seed=1)
    async with make_client(state, sandbox_server, where) as client:
        await client.access_token()
        state.faults.add(UNLIMITED, "latency", seconds=1.0, times=3)
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(cancelled_call, client)
        await assert_whole(client, state)


@pytest.mark.anyio
@pytest.mark.parametrize(("anyio_backend", "where"), WHERE)
async def test_cancel_during_retry_backoff(sandbox_server, anyio_backend, where):
    state = SandboxState(seed=1)
    options = {"retry_backoff": 2.0, "max_retries": 20}
    async with make_client(state, sandbox_server, where, **options) as client:
        await client.access_token()
        state.faults.add(UNLIMITED, "errcode", errcode=-1, probability=1.0)
        # Backoffs are uniform in [0, 2 * 2**n s]: at 0.3 s the call is asleep in one of them.
        await cancelled_call(client, delay=0.3)
        assert 1 <= state.calls[UNLIMITED] < 20
        state.faults.clear()
        await assert_whole(client, state)
