"""No AppSecret or token in a failed call's exception chain or in its traceback's locals.

Row of issue 12: "aiohttp error text in classic mode: the full URL with secret= kept in the
exception's __context__; tracebacks with capture_locals=True show the secret (1 place) and
tokens (280 places)". Failed calls against the sandbox served on a real loopback socket
(aiohttp underneath on asyncio, httpcore on trio), then every exception of the chain --
``__cause__`` and ``__context__``, suppressed or not -- and
``traceback.TracebackException(..., capture_locals=True)`` are searched for the secret and for
every token the sandbox issued. And: one Client used from a second event loop is a clear error.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterator

import anyio
import pytest

import wxqr
from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState, served

pytestmark = pytest.mark.anyio

UNLIMITED = "wxa/getwxacodeunlimit"
WRONG_SECRET = "wrong0secret0hostile0wrong0secret"


@pytest.fixture
def sandbox() -> Iterator[tuple[SandboxState, str]]:
    state = SandboxState(seed=12)
    with served(state) as base_url:
        yield state, base_url


def texts_of(exc: BaseException) -> list[str]:
    """Everything a logger, Sentry or a debugger could show of ``exc``."""
    texts = [
        "".join(
            traceback.TracebackException(
                type(exc), exc, exc.__traceback__, capture_locals=True
            ).format()
        )
    ]
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:  # the whole chain, suppressed or not
        seen.add(id(link))
        texts += [str(link), repr(link), repr(link.args), repr(vars(link))]
        texts.append(
            "".join(
                traceback.TracebackException(
                    type(link), link, link.__traceback__, capture_locals=True
                ).format()
            )
        )
        link = link.__cause__ or link.__context__
    return texts


def client(base_url: str, **options) -> wxqr.Client:
    return wxqr.Client(
        DEFAULT_APPID,
        options.pop("secret", DEFAULT_SECRET),
        api_base_url=base_url,
        mp_base_url=base_url,
        timeout=2.0,
        max_retries=1,
        retry_backoff=0.01,
        rate_limits={},
        **options,
    )


async def failure_of(call) -> BaseException:
    try:
        await call
    except wxqr.WxqrError as exc:
        return exc
    raise AssertionError("the faulty call succeeded")


@pytest.mark.parametrize("stable", [True, False], ids=["stable_token", "classic_token"])
async def test_failed_calls_show_no_secret_and_no_token(sandbox, stable):
    state, base_url = sandbox
    failures: list[BaseException] = []
    token_endpoint = "cgi-bin/stable_token" if stable else "cgi-bin/token"
    # A token fetch whose connection drops (classic mode: the secret is in the URL).
    state.faults.add(token_endpoint, "drop", probability=1.0)
    async with client(base_url, stable_token=stable) as wx:
        failures.append(await failure_of(wx.wxacode.get_unlimited(scene="a")))
    state.faults.clear()
    # A token endpoint answering HTTP 500.
    state.faults.add(token_endpoint, "http_status", status=500, probability=1.0)
    async with client(base_url, stable_token=stable) as wx:
        failures.append(await failure_of(wx.qrcode.create_temporary(scene_id=1, expire_seconds=9)))
    state.faults.clear()
    async with client(base_url, stable_token=stable) as wx:
        await wx.access_token()
        # API calls failing after their retries: dropped connections, 503s, a token WeChat
        # keeps rejecting, a lost answer of a non-idempotent call, an HTML page.
        for kind, options in [
            ("drop", {}),
            ("http_status", {"status": 503}),
            ("errcode", {"errcode": 40001}),
            ("html", {}),
        ]:
            state.faults.add(UNLIMITED, kind, probability=1.0, **options)
            failures.append(await failure_of(wx.wxacode.get_unlimited(scene="a")))
            state.faults.clear()
        state.faults.add("cgi-bin/shorten/gen", "drop", processed=True)
        failures.append(await failure_of(wx.shorten.gen("lost answer")))
        state.faults.clear()
    # A wrong secret, many callers sharing the refusal.
    async with client(base_url, stable_token=stable, secret=WRONG_SECRET) as wx:
        results: list[BaseException] = []

        async def one() -> None:
            results.append(
                await failure_of(wx.qrcode.create_temporary(scene_id=1, expire_seconds=9))
            )

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
        failures += results

    secrets = [DEFAULT_SECRET, WRONG_SECRET, *state.tokens]
    assert len(state.tokens) >= 1
    assert {type(f) for f in failures} >= {
        wxqr.TransportError,
        wxqr.HTTPStatusError,
        wxqr.AccessTokenError,
        wxqr.ResponseDecodeError,
        wxqr.CredentialError,
    }
    texts = [text for failure in failures for text in texts_of(failure)]
    # The tracebacks really rendered the locals (otherwise this would prove nothing).
    assert any("target = " in t for t in texts)
    for secret in secrets:
        leaks = [t for t in texts if secret in t]
        assert not leaks, f"{secret[:8]}... leaked: {leaks[0][:3000]}"


async def test_wxqrs_own_exceptions_keep_no_foreign_context(sandbox):
    # A dropped connection on a classic token fetch: the wire's exception, whose text may hold
    # the URL with the secret, is not kept as __context__ or __cause__.
    state, base_url = sandbox
    state.faults.add("cgi-bin/token", "drop", probability=1.0)
    async with client(base_url, stable_token=False) as wx:
        failure = await failure_of(wx.access_token())
    assert isinstance(failure, wxqr.TransportError)
    assert failure.__cause__ is None
    assert failure.__context__ is None


def test_one_client_used_from_a_second_event_loop_is_a_clear_error(sandbox):
    _, base_url = sandbox
    wx = client(base_url)

    async def use() -> str:
        return await wx.access_token()

    async def call() -> None:
        await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)

    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(use())
        with pytest.raises(RuntimeError, match="bound to the event loop it was first used in"):
            asyncio.run(use())
        with pytest.raises(RuntimeError, match="one Client per event loop"):
            asyncio.run(call())
        trio = pytest.importorskip("trio")
        with pytest.raises(RuntimeError, match="one Client per event loop"):
            trio.run(call)
        first.run_until_complete(call())  # still fine in its own loop
    finally:
        first.run_until_complete(wx.aclose())
        first.close()
