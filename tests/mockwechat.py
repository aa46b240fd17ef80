"""A scriptable fake WeChat for ``httpx.MockTransport``: the unit tests' stand-in for the server.

::

    fake = FakeWeChat()
    fake.reply("cgi-bin/shorten/fetch", {"errcode": -1, "errmsg": "system error"})  # then default
    async with fake.client(retry_backoff=0) as wx:
        data = await wx.shorten.fetch("iTqRJFSEqk9RvPk")
    assert len(fake.calls("cgi-bin/shorten/fetch")) == 2

What it does by itself (so tests only script what is unusual):

* token endpoints issue distinctive tokens (``fake.issued``): the classic ``cgi-bin/token`` a new
  one per fetch; ``cgi-bin/stable_token`` the current one while it is still accepted (or always,
  with ``stable_repeats=True``, like a lagging WeChat) and a new one on ``force_refresh``;
* API calls carrying a token that was never issued, or was ``reject()``-ed, answer 40001;
* every other API answers with its documented example body (``tests/fixtures``) or a real PNG.

Every request is recorded in ``fake.requests``; the most API requests seen in flight at once is
``fake.max_in_flight``; send times are in ``fake.sent_at``.
"""

from __future__ import annotations

import inspect
import io
import json
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import segno

import wxqr

FIXTURES = Path(__file__).parent / "fixtures"

APPID = "wx1a2b3c4d5e6f7a8b"
SECRET = "SECRET-9d8c7b6a5f4e3d2c1b0a"  # distinctive: the leak tests search for it

TOKEN_PATHS = frozenset({"cgi-bin/token", "cgi-bin/stable_token"})
#: API paths that take no access token (clear_quota/v2 authenticates with the AppSecret).
TOKENLESS_PATHS = frozenset({"cgi-bin/clear_quota/v2"})


def fixture(name: str) -> dict[str, Any]:
    """A WeChat body from ``tests/fixtures/<name>.json`` (taken from the reference examples)."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def make_png(content: str = "x") -> bytes:
    """A real, complete PNG (a QR code made by segno)."""
    buf = io.BytesIO()
    segno.make(content).save(buf, kind="png")
    return buf.getvalue()


PNG = make_png()

DEFAULT_ANSWERS: dict[str, Any] = {
    "cgi-bin/qrcode/create": fixture("qrcode_create_temporary"),
    "cgi-bin/showqrcode": PNG,
    "cgi-bin/shorten/gen": fixture("shorten_gen"),
    "cgi-bin/shorten/fetch": fixture("shorten_fetch"),
    "cgi-bin/wxopen/qrcodejumpadd": fixture("ok"),
    "cgi-bin/wxopen/qrcodejumpget": fixture("qrcodejump_get"),
    "cgi-bin/wxopen/qrcodejumpdelete": fixture("ok"),
    "cgi-bin/wxopen/qrcodejumppublish": fixture("ok"),
    "cgi-bin/wxopen/qrcodejumpdownload": fixture("qrcodejump_download"),
    "cgi-bin/wxaapp/createwxaqrcode": PNG,
    "wxa/getwxacode": PNG,
    "wxa/getwxacodeunlimit": PNG,
}


def error(errcode: int, errmsg: str | None = None) -> dict[str, Any]:
    """A WeChat error body with a ``rid``, using the catalogue's errmsg by default."""
    if errmsg is None:
        entry = wxqr.errors.CATALOGUE.get(errcode)
        errmsg = entry.errmsg if entry else "unknown error"
    return {"errcode": errcode, "errmsg": f"{errmsg} rid: 617682e0-09059ac5-34a8e2ea"}


def raises(exc_type: type[httpx.TransportError], message: str = "boom") -> Callable[..., Any]:
    """An answer that fails the request with an httpx exception (e.g. ``httpx.ConnectError``)."""

    def answer(request: httpx.Request) -> Any:
        raise exc_type(message, request=request)

    return answer


def path_of(request: httpx.Request) -> str:
    return request.url.path.lstrip("/")


def token_of(request: httpx.Request) -> str | None:
    return request.url.params.get("access_token")


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


class FakeWeChat:
    """A callable handler for ``httpx.MockTransport`` that behaves like WeChat (see module doc).

    Args:
        expires_in: ``expires_in`` of issued tokens.
        stable_repeats: ``stable_token`` keeps answering the current token even after it was
            rejected (WeChat's replicas disagree); only ``force_refresh`` issues a new one.
        delay: seconds every API answer takes (keeps requests in flight).
        token_delay: seconds every token answer takes (keeps a fetch in flight).
        check_tokens: answer 40001 to API calls with unknown or rejected tokens.
    """

    def __init__(
        self,
        *,
        expires_in: float = 7200,
        stable_repeats: bool = False,
        delay: float = 0.0,
        token_delay: float = 0.0,
        check_tokens: bool = True,
    ) -> None:
        self.expires_in = expires_in
        self.stable_repeats = stable_repeats
        self.delay = delay
        self.token_delay = token_delay
        self.check_tokens = check_tokens
        self.requests: list[httpx.Request] = []
        self.issued: list[str] = []
        self.accepted: set[str] = set()
        self.stable_current: str | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.sent_at: list[float] = []
        self._queued: dict[str, deque[Any]] = {}
        self._always: dict[str, Any] = {}

    # -- scripting ---------------------------------------------------------------------------
    def reply(self, path: str, *answers: Any) -> None:
        """Queue answers for ``path``, used once each, in order; then the default applies.

        An answer is a dict (JSON, ``application/json; encoding=utf-8``), bytes (an image,
        ``image/jpeg``), an ``httpx.Response``, or a callable ``(request) -> answer`` (may be
        async, may raise).
        """
        self._queued.setdefault(path, deque()).extend(answers)

    def reply_always(self, path: str, answer: Any) -> None:
        """Answer every request to ``path`` with ``answer`` (after any queued answers)."""
        self._always[path] = answer

    def reject(self, token: str) -> None:
        """Make API calls with ``token`` answer 40001 from now on."""
        self.accepted.discard(token)

    # -- what happened -------------------------------------------------------------------------
    def calls(self, path: str) -> list[httpx.Request]:
        """The requests sent to ``path`` (e.g. ``"cgi-bin/shorten/gen"``), in order."""
        return [r for r in self.requests if path_of(r) == path]

    @property
    def token_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if path_of(r) in TOKEN_PATHS]

    @property
    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if path_of(r) not in TOKEN_PATHS]

    # -- the client under test -------------------------------------------------------------------
    def http_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def client(self, **options: Any) -> wxqr.Client:
        """A ``wxqr.Client`` talking to this fake (secret and http_client filled in)."""
        options.setdefault("http_client", self.http_client())
        if "token_provider" not in options:
            options.setdefault("secret", SECRET)
        return wxqr.Client(options.pop("appid", APPID), **options)

    # -- the handler ----------------------------------------------------------------------------
    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = path_of(request)
        if path in TOKEN_PATHS:
            if self.token_delay:
                await anyio.sleep(self.token_delay)
            answer = self._scripted(path)
            if answer is None:
                answer = self._issue(path, request)
            return await self._respond(answer, request)

        self.sent_at.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await anyio.sleep(self.delay)
            else:
                await anyio.lowlevel.checkpoint()
            token = token_of(request)
            if (
                self.check_tokens
                and request.url.host == "api.weixin.qq.com"
                and path not in TOKENLESS_PATHS
            ):
                if token is None:
                    return await self._respond(error(41001), request)
                if token not in self.accepted:
                    return await self._respond(fixture("error_40001"), request)
            answer = self._scripted(path)
            if answer is None:
                answer = DEFAULT_ANSWERS.get(path, httpx.Response(404))
            return await self._respond(answer, request)
        finally:
            self.in_flight -= 1

    def _scripted(self, path: str) -> Any:
        queue = self._queued.get(path)
        if queue:
            return queue.popleft()
        return self._always.get(path)

    def _new_token(self) -> str:
        token = f"TOKEN{len(self.issued) + 1}-q8Zr4Lm2Xw7Kp"
        self.issued.append(token)
        self.accepted.add(token)
        return token

    def _issue(self, path: str, request: httpx.Request) -> dict[str, Any]:
        if path == "cgi-bin/token":
            token = self._new_token()  # the classic API issues a new token every time
        else:
            force = (body_of(request) or {}).get("force_refresh") is True
            current = self.stable_current
            if force or current is None or not (self.stable_repeats or current in self.accepted):
                if force and current is not None:
                    self.accepted.discard(current)
                current = self.stable_current = self._new_token()
            token = current
        return {"access_token": token, "expires_in": self.expires_in}

    async def _respond(self, answer: Any, request: httpx.Request) -> httpx.Response:
        while callable(answer):
            answer = answer(request)
            if inspect.isawaitable(answer):
                answer = await answer
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, bytes):
            return httpx.Response(200, content=answer, headers={"content-type": "image/jpeg"})
        return httpx.Response(
            200,
            content=json.dumps(answer, ensure_ascii=False).encode(),
            headers={"content-type": "application/json; encoding=utf-8"},
        )
