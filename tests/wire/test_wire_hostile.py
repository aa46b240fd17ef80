"""Hostile answers over real loopback sockets, on every wire (issue 12, items 1, 2, 8, 9).

Each test runs on the aiohttp wire (asyncio) and the httpx wire (asyncio and trio), against
the tests' own hostile server (``hostile_server.py``), and asserts its figure: memory growth
near the cap (measured in a fresh process), time near the timeout, requests counted at the
server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import anyio
import httpx
import pytest
from hostile_server import BOMB_INFLATED, MAX_PUSHED, HostileServer, gzip_bomb

import wxqr

pytestmark = pytest.mark.anyio

WIRES = [
    pytest.param("asyncio", "aiohttp", id="aiohttp-asyncio"),
    pytest.param("asyncio", "httpx", id="httpx-asyncio"),
    pytest.param("trio", "httpx", id="httpx-trio"),
]
CHILD = Path(__file__).with_name("wire_rss_child.py")
MIB = 1024 * 1024
CLASSIC_SECRET = "classic-SECRET-7f3a9c"
CAP = wxqr.Client("wx0", "s")._max_response_bytes  # the default: 16 MiB


@pytest.fixture
def server():
    gzip_bomb()  # built before the server needs it (a second of CPU, once)
    with HostileServer() as running:
        yield running


def client(server: HostileServer, wire: str, **options) -> wxqr.Client:
    options.setdefault("rate_limits", {})
    options.setdefault("retry_backoff", 0.01)
    return wxqr.Client(
        "wxhostile",
        options.pop("secret", "hostile-secret"),
        api_base_url=server.base_url,
        mp_base_url=server.base_url,
        wire=wire,
        **options,
    )


def test_the_default_cap_is_16_mib():
    assert CAP == 16 * MIB


# -- 1. bounded answers ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["huge", "endless", "gzip-bomb"])
@pytest.mark.parametrize(("backend", "wire"), WIRES)
def test_an_answer_over_the_cap_is_refused_with_memory_bounded_near_it(server, mode, backend, wire):
    # The call runs in a fresh process so that its peak RSS is its own.
    server.mode = mode
    run = subprocess.run(
        [sys.executable, str(CHILD), server.base_url, wire, backend],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["error"] == "ResponseTooLargeError", result
    assert "max_response_bytes=16,777,216" in result["message"]
    # Without the cap: 10 GB / a 400 MiB stream / 256 MiB inflated. With it: about the cap.
    assert result["rss_growth_mib"] < CAP / MIB + 8, result
    assert result["seconds"] < 10
    assert server.api_requests() == 1  # not retried
    deadline = time.monotonic() + 5
    while not server.pushed and time.monotonic() < deadline:
        time.sleep(0.01)
    [pushed] = server.pushed
    if mode == "huge":
        # Content-Length is checked up front: only what socket buffers took was sent.
        assert pushed < CAP, pushed
    elif mode == "endless":
        assert pushed < MAX_PUSHED  # the client hung up (connection dropped, not drained)
    print(
        f"\n{mode}/{wire}/{backend}: RSS +{result['rss_growth_mib']:.1f} MiB, "
        f"{result['seconds']:.2f} s, server pushed {pushed / MIB:.1f} MiB"
    )


def test_the_bomb_really_is_one():
    assert len(gzip_bomb()) < 300 * 1024
    assert BOMB_INFLATED == 256 * MIB


@pytest.mark.parametrize(("anyio_backend", "wire"), WIRES)
async def test_over_the_cap_the_connection_is_dropped_not_reused(server, anyio_backend, wire):
    server.mode = "endless"
    async with client(server, wire, max_response_bytes=64 * 1024, max_retries=3) as wx:
        await wx.access_token()
        with pytest.raises(wxqr.ResponseTooLargeError) as caught:
            await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
        assert caught.value.limit == 64 * 1024
        with anyio.fail_after(5):
            while not server.pushed:  # the server's writes fail once the client hung up
                await anyio.sleep(0.01)
        assert server.pushed[0] < 64 * MIB
        server.mode = "ok"
        connections = server.connections
        assert (await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)).ticket
        assert server.connections == connections + 1  # a fresh connection
    assert server.api_requests() == 2  # the oversized answer was not retried


# -- 2. bounded time ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("anyio_backend", "wire"), WIRES)
async def test_a_trickling_server_releases_the_call_and_its_slot_in_time(
    server, anyio_backend, wire
):
    server.mode = "trickle"  # 1 byte a second: no single read ever times out
    async with client(server, wire, timeout=2, max_retries=0, max_concurrency=1) as wx:
        await wx.access_token()
        started = time.monotonic()
        with pytest.raises(wxqr.TransportError, match="timed out"):
            await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
        elapsed = time.monotonic() - started
        assert 1.9 <= elapsed <= 2.5, elapsed
        assert wx._transport.in_flight == 0
        server.mode = "ok"
        with anyio.fail_after(1):  # the only concurrency slot is free again
            assert (await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)).ticket
    print(f"\ntrickle/{wire}/{anyio_backend}: released after {elapsed:.2f} s (timeout 2)")


@pytest.mark.slow
@pytest.mark.parametrize(("anyio_backend", "wire"), WIRES)
async def test_deadline_bounds_a_call_whatever_its_retries(server, anyio_backend, wire):
    server.mode = "trickle"
    # Per attempt, 4 attempts x 1 s would be >= 4 s; the call's deadline is 1.5 s.
    async with client(server, wire, timeout=1, max_retries=3, deadline=1.5) as wx:
        await wx.access_token()
        started = time.monotonic()
        with pytest.raises(wxqr.TransportError, match=r"deadline of 1\.5s"):
            await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
        elapsed = time.monotonic() - started
    assert 1.4 <= elapsed <= 2.0, elapsed
    assert server.api_requests() == 2  # the first attempt timed out, the retry was cut off


@pytest.fixture
def unanswered_port():
    """A port whose accept queue is full: a new connection hangs in SYN, as to a dead host."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    yield port
    for sock in [*fillers, listener]:
        sock.close()


@pytest.mark.parametrize(("anyio_backend", "wire"), WIRES)
async def test_a_hanging_connect_is_known_unsent_so_even_shorten_gen_is_retried(
    unanswered_port, anyio_backend, wire
):
    base = f"http://127.0.0.1:{unanswered_port}"
    async with wxqr.Client(
        "wxhostile",
        token_provider=_provider,
        api_base_url=base,
        mp_base_url=base,
        wire=wire,
        timeout=0.5,
        max_retries=1,
        retry_backoff=0.01,
        rate_limits={},
    ) as wx:
        started = time.monotonic()
        with pytest.raises(wxqr.TransportError, match=r"not sent|connecting") as caught:
            await wx.shorten.gen("data")
        elapsed = time.monotonic() - started
    # Two attempts (a non-idempotent call is resent only when nothing was sent), each cut at
    # 90% of the 0.5 s attempt: one attempt alone would end after ~0.45 s.
    assert 0.85 <= elapsed <= 3.0, (elapsed, str(caught.value))


async def _provider() -> str:
    return "PROVIDED_TOKEN"


@pytest.mark.slow
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_timeouts_of_5_s_and_more_are_not_rounded_up(server, anyio_backend):
    # aiohttp rounds timeouts >= 5 s up to a whole second of loop time unless told not to.
    server.mode = "trickle"
    async with client(server, "aiohttp", timeout=5.2, max_retries=0) as wx:
        await wx.access_token()
        started = time.monotonic()
        with pytest.raises(wxqr.TransportError, match="timed out"):
            await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
        elapsed = time.monotonic() - started
    assert 5.1 <= elapsed <= 5.7, elapsed


# -- 8. redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize(("anyio_backend", "wire"), WIRES)
async def test_a_redirect_is_never_followed_even_if_the_callers_client_would(
    server, anyio_backend, wire
):
    server.mode = "redirect"
    server.tokens_too = True  # the token POST carries the AppSecret
    http = httpx.AsyncClient(follow_redirects=True) if wire == "httpx" else None
    try:
        async with client(server, "auto" if http else wire, http_client=http) as wx:
            with pytest.raises(wxqr.HTTPStatusError) as caught:
                await wx.access_token()
            assert caught.value.status_code == 307
            server.tokens_too = False
            with pytest.raises(wxqr.HTTPStatusError) as caught:
                await wx.shorten.fetch("key")
            assert caught.value.status_code == 307
    finally:
        if http is not None:
            await http.aclose()
    assert server.requests["/elsewhere"] == 0
    assert server.requests["/cgi-bin/stable_token"] == 2  # one refused, one good
    assert server.requests["/cgi-bin/shorten/fetch"] == 1  # 3xx: not retried


# -- 9. honest status handling -------------------------------------------------------------------


@pytest.mark.parametrize(("anyio_backend", "wire"), WIRES)
async def test_http_999_is_not_retried_as_a_server_error(server, anyio_backend, wire):
    server.mode = "status-999"
    async with client(server, wire, max_retries=3) as wx:
        await wx.access_token()
        with pytest.raises(wxqr.HTTPStatusError) as caught:
            await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
    assert caught.value.status_code == 999
    assert server.api_requests() == 1


@pytest.mark.parametrize(
    ("call", "attempts"),
    [
        pytest.param(lambda wx: wx.shorten.fetch("key"), 3, id="idempotent-retried"),
        pytest.param(lambda wx: wx.shorten.gen("data"), 1, id="non-idempotent-not-resent"),
    ],
)
@pytest.mark.parametrize(("anyio_backend", "wire"), WIRES)
async def test_a_malformed_answer_is_named_as_such(server, anyio_backend, wire, call, attempts):
    server.mode = "malformed"
    async with client(server, wire, max_retries=2) as wx:
        await wx.access_token()
        with pytest.raises(wxqr.TransportError) as caught:
            await call(wx)
    assert "malformed HTTP answer" in str(caught.value)
    assert "WriteError" not in str(caught.value)
    assert server.api_requests() == attempts


# -- 8. secrets out of every exception path ---------------------------------------------------


def chain_texts(exc: BaseException) -> list[str]:
    texts = [
        "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    ]
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        texts += [str(exc), repr(exc), repr(exc.args)]
        exc = exc.__cause__ or exc.__context__
    return texts


@pytest.mark.parametrize("mode", ["malformed", "trickle", "redirect", "refused"])
@pytest.mark.parametrize(("anyio_backend", "wire"), WIRES)
async def test_classic_token_failures_keep_the_secret_out_of_the_exception_chain(
    server, anyio_backend, wire, mode
):
    # Classic mode sends the AppSecret in the query string: aiohttp's and httpx's own
    # messages embed that URL. (A module constant: a local would show in this frame's locals.)
    server.mode, server.tokens_too = ("ok" if mode == "refused" else mode), True
    if mode == "refused":
        server.stop()  # nothing listens on the port any more
    async with client(
        server, wire, secret=CLASSIC_SECRET, stable_token=False, timeout=0.5, max_retries=0
    ) as wx:
        with pytest.raises(wxqr.WxqrError) as caught:
            await wx.access_token()
    texts = chain_texts(caught.value)
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None
    assert not [t for t in texts if CLASSIC_SECRET in t]
