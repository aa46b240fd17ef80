"""Fault matrix: every fault the sandbox can inject x every class of endpoint, over real sockets.

Each cell asserts what a user sees (the result, or the precise exception type), how many
attempts reached the sandbox, how many token fetches it cost, and -- for the two
non-idempotent calls -- how many times the call *took effect* on the WeChat side. That last
number is the point of the retry table in ``wxqr/_transport.py``: a ``shorten.gen`` whose
answer was lost (``drop`` after processing, a read timeout) created a key, and resending it
would create a second one; a ``qrcode_jump.publish`` spends a monthly quota.

Runs on the aiohttp wire (asyncio's default) and on the httpx wire (httpcore) under asyncio and
trio: the mapping of socket-level failures to "sent" / "not sent" lives in each wire, so every
wire is checked.
"""

from __future__ import annotations

import time

import anyio
import pytest

import wxqr
from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState
from wxqr.sandbox._state import JumpRule, ShortKey, Ticket

KEY = "ReliabilityKey1"
PREFIX = "https://reliability.example.com/qr/"
TICKET = "gQH+reliability/ticket=="
TIMEOUT = 0.5  # whole-attempt timeout (loaded CI machines); the latency fault is twice as long
MAX_RETRIES = 2

# endpoint id -> (sandbox path, class, call)
ENDPOINTS = {
    "shorten.fetch": ("cgi-bin/shorten/fetch", "json", lambda c: c.shorten.fetch(KEY)),
    "qrcode.create_temporary": (
        "cgi-bin/qrcode/create",
        "json",
        lambda c: c.qrcode.create_temporary(scene_id=7, expire_seconds=60),
    ),
    "shorten.gen": ("cgi-bin/shorten/gen", "once", lambda c: c.shorten.gen("payload")),
    "qrcode_jump.publish": (
        "cgi-bin/wxopen/qrcodejumppublish",
        "once",
        lambda c: c.qrcode_jump.publish(PREFIX),
    ),
    "wxacode.get_unlimited": (
        "wxa/getwxacodeunlimit",
        "image",
        lambda c: c.wxacode.get_unlimited(scene="a=1"),
    ),
    "qrcode.show": ("cgi-bin/showqrcode", "show", lambda c: c.qrcode.show(TICKET)),
}

OK = "ok"
Busy, Status, Transport = wxqr.SystemBusyError, wxqr.HTTPStatusError, wxqr.TransportError
Decode, Token, Rate, Quota = (
    wxqr.ResponseDecodeError,
    wxqr.AccessTokenError,
    wxqr.RateLimitError,
    wxqr.QuotaExceededError,
)


def fault(kind, **options):
    return lambda state, path: state.faults.add(path, kind, **options)


def revoke(state, path):
    state.revoke_tokens(DEFAULT_APPID)


def transient(error, effects_when_raised=0):
    """A fault that fires once: idempotent calls retry and succeed (2 attempts), the
    non-idempotent ones raise ``error`` after 1 attempt that took ``effects_when_raised``."""
    return {
        "json": (OK, 2),
        "once": (error, 1, effects_when_raised),
        "image": (OK, 2),
        "show": (OK, 2),
    }


def everywhere(outcome, attempts, effects, show=None):
    """The same outcome for every class (refused-unrun answers, harmless faults)."""
    return {
        "json": (outcome, attempts),
        "once": (outcome, attempts, effects),
        "image": (outcome, attempts),
        "show": show or (outcome, attempts),
    }


def persistent(error):
    """A fault on every attempt: 1 + max_retries attempts, or 1 when not idempotent."""
    n = 1 + MAX_RETRIES
    return {"json": (error, n), "once": (error, 1, 0), "image": (error, n), "show": (error, n)}


# fault id -> (setup, expectations by class, extra token fetches for token-bearing calls)
# expectations: json/image/show -> (outcome, attempts); once -> (outcome, attempts, effects)
FAULTS = {
    "errcode--1": (fault("errcode", errcode=-1), transient(Busy), 0),
    "errcode-886001": (fault("errcode", errcode=886001), transient(Busy), 0),
    # 44990: refused unrun, so even non-idempotent calls wait retry_after (1 s) and resend.
    "errcode-44990": (fault("errcode", errcode=44990), everywhere(OK, 2, 1), 0),
    # 45011 asks for 60 s, more than max_rate_limit_wait: raised at once.
    "errcode-45011": (fault("errcode", errcode=45011), everywhere(Rate, 1, 0), 0),
    "errcode-45009": (fault("errcode", errcode=45009), everywhere(Quota, 1, 0), 0),
    # 40001 while the token is valid: stable_token answers the same token, so wxqr forces one
    # refresh (2 fetches) and resends once. showqrcode takes no token: nothing to refresh.
    "errcode-40001": (
        fault("errcode", errcode=40001),
        everywhere(OK, 2, 1, show=(Token, 1)),
        2,
    ),
    "errcode-40001-every-time": (
        fault("errcode", errcode=40001, probability=1.0),
        everywhere(Token, 2, 0, show=(Token, 1)),
        2,
    ),
    # The token was refreshed elsewhere (WeChat now answers 40001 for it): one fetch, one resend.
    "token-revoked-elsewhere": (revoke, everywhere(OK, 2, 1, show=(OK, 1)), 1),
    "http-500": (fault("http_status", status=500), transient(Status), 0),
    "http-502": (fault("http_status", status=502), transient(Status), 0),
    "http-503": (fault("http_status", status=503), transient(Status), 0),
    "drop": (fault("drop"), transient(Transport), 0),
    # WeChat did the work, then the answer was lost: a non-idempotent call must not be resent.
    "drop-after-processing": (fault("drop", processed=True), transient(Transport, 1), 0),
    "read-timeout": (fault("latency", seconds=2 * TIMEOUT), transient(Transport, 1), 0),
    "html-page": (fault("html"), transient(Decode), 0),
    # The real answer, cut in half (for JSON endpoints: malformed JSON). It was processed.
    "truncated": (fault("truncated_image"), transient(Decode, 1), 0),
    "lying-content-type": (fault("lying_content_type"), everywhere(OK, 1, 1), 0),
    # Error JSON labelled image/jpeg (after the request took effect): never returned as bytes.
    "image-typed-json-busy": (fault("lying_content_type", errcode=-1), transient(Busy, 1), 0),
    "image-typed-json-45009": (
        fault("lying_content_type", errcode=45009),
        everywhere(Quota, 1, 1),
        0,
    ),
    "errcode--1-every-time": (fault("errcode", errcode=-1, probability=1.0), persistent(Busy), 0),
    "http-503-every-time": (
        fault("http_status", status=503, probability=1.0),
        persistent(Status),
        0,
    ),
    "drop-every-time": (fault("drop", probability=1.0), persistent(Transport), 0),
}

#: Faults that are plain HTTP 200 JSON answers exercise the decoder and the retry policy, not
#: the socket layer: the same on both backends, so they run on asyncio only (44990 costs 1 s).
JSON_ANSWER_FAULTS = {
    fault_id
    for fault_id in FAULTS
    if fault_id.startswith(("errcode-", "token-", "lying-", "image-typed-"))
}

#: (anyio backend, wire, id prefix): the aiohttp wire on asyncio, the httpx wire on both.
WIRES = [
    ("asyncio", "aiohttp", "asyncio"),
    ("asyncio", "httpx", "asyncio-httpx"),
    ("trio", "httpx", "trio"),
]
CELLS = [
    pytest.param(backend, wire, fault_id, endpoint_id, id=f"{name}-{fault_id}-{endpoint_id}")
    for backend, wire, name in WIRES
    for fault_id in FAULTS
    if wire == "aiohttp" or fault_id not in JSON_ANSWER_FAULTS
    for endpoint_id in ENDPOINTS
]


def fresh_state() -> SandboxState:
    state = SandboxState(seed=11)
    account = state.default_account
    account.jump_per_second = 10**6  # the matrix, not the 5/s limit, decides what happens
    account.jump_rules[PREFIX] = JumpRule(
        prefix=PREFIX, path="pages/index/index", permit_sub_rule=1, open_version=3
    )
    now = state.clock.now()
    state.short_keys[KEY] = ShortKey(KEY, DEFAULT_APPID, "hello", now, now + 3600)
    state.tickets[TICKET] = Ticket(
        TICKET,
        "http://weixin.qq.com/q/02reliability",
        DEFAULT_APPID,
        "QR_SCENE",
        7,
        now,
        now + 3600,
    )
    return state


def effects(state: SandboxState, endpoint_id: str) -> int:
    """How many times a non-idempotent call took effect on the WeChat side."""
    if endpoint_id == "shorten.gen":
        return len(state.short_keys) - 1
    return state.default_account.used("qrcodejump_publish", state.clock.month())


def check_result(endpoint_id: str, result, state: SandboxState) -> None:
    if endpoint_id == "shorten.fetch":
        assert isinstance(result, wxqr.ShortenData)
        assert result.long_data == "hello"
    elif endpoint_id == "qrcode.create_temporary":
        assert isinstance(result, wxqr.QrTicket)
        assert result.ticket in state.tickets
    elif endpoint_id == "shorten.gen":
        assert state.short_keys[result].long_data == "payload"
    elif endpoint_id == "qrcode_jump.publish":
        assert result is None
        assert state.default_account.jump_rules[PREFIX].state == 2
    else:
        assert wxqr.image_kind(result) == "png"


@pytest.mark.anyio
@pytest.mark.parametrize(("anyio_backend", "wire", "fault_id", "endpoint_id"), CELLS)
async def test_fault_cell(sandbox_server, request, anyio_backend, wire, fault_id, endpoint_id):
    state = sandbox_server.use(fresh_state())
    path, klass, call = ENDPOINTS[endpoint_id]
    setup, expectations, token_refetches = FAULTS[fault_id]
    expected = expectations[klass]
    outcome, attempts = expected[0], expected[1]
    base = sandbox_server.base_url
    async with wxqr.Client(
        DEFAULT_APPID,
        DEFAULT_SECRET,
        api_base_url=base,
        mp_base_url=base,
        wire=wire,
        timeout=TIMEOUT,
        max_retries=MAX_RETRIES,
        retry_backoff=0.01,
        max_rate_limit_wait=2.0,
        rate_limits={},
    ) as client:
        await client.access_token()  # warm: the token fetch is not part of the cell
        fetches_before = state.calls["cgi-bin/stable_token"]
        setup(state, path)
        with anyio.fail_after(15):
            if outcome is OK:
                check_result(endpoint_id, await call(client), state)
            else:
                with pytest.raises(outcome) as caught:
                    await call(client)
                assert type(caught.value) is outcome, repr(caught.value)
    assert state.calls[path] == attempts, [(r.fault, r.status, r.errcode) for r in state.requests]
    refetches = 0 if klass == "show" else token_refetches
    assert state.calls["cgi-bin/stable_token"] - fetches_before == refetches
    if klass == "once":
        # A timed-out request is still being served: let it finish before counting effects.
        deadline = time.monotonic() + 5
        while state.in_flight[path] and time.monotonic() < deadline:
            await anyio.sleep(0.02)
        assert effects(state, endpoint_id) == expected[2]
