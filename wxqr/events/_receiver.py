"""The framework-neutral receiver: verify, decrypt, parse, de-duplicate, dispatch, reply.

``Receiver.handle(method, query, body) -> Answer`` is the whole protocol (reference/events.md
§1); the ASGI and aiohttp adapters (``_adapters.py``) only translate requests and answers.

Answering in time. WeChat waits 5 s for an answer and then resends. A handler that has not
finished within ``reply_deadline`` must not make it resend, so the receiver answers ``success``
and lets the handler finish *in the background*. Background work needs a task group that
outlives the request, and with anyio (asyncio and trio alike) a task group belongs to a scope:
the receiver owns one, opened by ``async with receiver:`` (put it in your app's lifespan) or by
the ASGI lifespan when ``receiver.asgi_app`` is the top-level app. Every handler runs in that
task group; the request waits for it up to ``reply_deadline``. Leaving the ``async with`` block
gives running handlers ``shutdown_grace`` seconds, then cancels them. A receiver that was never
opened still works, but runs handlers inline: a slow handler then delays the answer (a warning
says so once).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.abc

from ..errors import ValidationError
from ._crypto import MessageCrypto, aes_key
from ._dedup import Dedup, MemoryDedup
from ._errors import (
    AppIdMismatch,
    DecryptError,
    DedupError,
    MalformedMessage,
    ReceiveError,
    SignatureError,
)
from ._models import Answer, Event, QrScan
from ._parse import parse_fields, to_event
from ._signature import check_signature

if TYPE_CHECKING:
    from ._adapters import AiohttpRequest, AiohttpResponse, ASGIApp

__all__ = ["EventHandler", "Receiver", "ScanHandler"]

log = logging.getLogger("wxqr.events")

#: A scan handler: a ``str`` is sent back as a passive text reply, ``None`` answers ``success``.
ScanHandler = Callable[[QrScan], Awaitable[str | None]]
#: An event handler (same reply rule).
EventHandler = Callable[[Event], Awaitable[str | None]]
S = TypeVar("S", bound=ScanHandler)
E = TypeVar("E", bound=EventHandler)

WECHAT_TIMEOUT: Final = 5.0  # WeChat drops the connection and resends after 5 s [§1.7]
MAX_BODY_LIMIT: Final = 16 * 1024 * 1024
_TEXT: Final = "text/plain; charset=utf-8"
_CONTENT_TYPES: Final = {
    "xml": "application/xml; charset=utf-8",
    "json": "application/json; charset=utf-8",
}
# One body per status: the answer never says which check failed (the log does).
_REFUSALS: Final = {
    400: b"bad request",
    403: b"forbidden",
    405: b"method not allowed",
    413: b"payload too large",
    500: b"internal error",
}
_SUCCESS: Final = Answer(200, _TEXT, b"success")


def _number(name: str, value: Any, low: float, high: float, *, open_low: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValidationError(name, f"must be a number in ({low:g}, {high:g}]")
    if (value <= low if open_low else value < low) or value > high:
        raise ValidationError(name, f"must be in ({low:g}, {high:g}], got {value:g}")
    return float(value)


def _refusal(status: int, error: ReceiveError | None = None) -> Answer:
    return Answer(status, _TEXT, _REFUSALS[status], error=error)


def dedup_key(event: QrScan | Event) -> str:
    """The identity of one push for de-duplication (reference §1.7).

    Messages: ``MsgId``. Events: ``FromUserName + CreateTime + Event + EventKey + Ticket``
    (WeChat's recommended ``FromUserName + CreateTime`` alone merges distinct events). Scoped
    by the account (``ToUserName``) and hashed, so the key holds no user data.
    """
    raw = event.raw
    msg_id = raw.get("MsgId", "").strip()
    if msg_id:
        parts = ["msg", msg_id]
    else:
        parts = ["evt", *(raw.get(f, "") for f in ("FromUserName", "CreateTime", "Event"))]
        parts += [raw.get("EventKey", ""), raw.get("Ticket", "")]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]
    return f"{event.account}:{digest}"


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml(fields: Mapping[str, str | int]) -> bytes:
    inner = "".join(
        f"<{name}>{value}</{name}>"
        if isinstance(value, int)
        else f"<{name}>{_cdata(value)}</{name}>"
        for name, value in fields.items()
    )
    return f"<xml>{inner}</xml>".encode()


def _render(fields: Mapping[str, str | int], fmt: str) -> bytes:
    if fmt == "json":
        import json

        return json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":")).encode()
    return _xml(fields)


class _Run:
    """One handler invocation's outcome, shared by the request and the background task."""

    __slots__ = ("abandoned", "done", "error", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: object = None
        self.error: BaseException | None = None
        self.abandoned = False


class Receiver:
    """Receive WeChat's pushes: scan events (``subscribe`` with a scene, ``SCAN``) and the rest.

    Args:
        token: the Token from the server configuration page.
        encoding_aes_key: the 43-character EncodingAESKey (compatible / safe mode).
        previous_aes_key: the key before the last rotation; tried when the current one fails,
            and the reply is then encrypted with it.
        appid: the account's AppID; required with an AES key, checked in every decrypted frame.
        dedup: the de-duplication store; default :class:`MemoryDedup`, :class:`RedisDedup` for
            several worker processes.
        max_skew: ``|now - timestamp|`` above this many seconds is refused (replay); ``None``
            turns the check off.
        max_body: bodies larger than this many bytes are refused (413) before parsing.
        reply_deadline: seconds a handler may take before the receiver answers ``success``
            and lets it finish in the background (0 < deadline < 5, WeChat's timeout).
        shutdown_grace: seconds background handlers get when the receiver closes.
        clock: the Unix-time source for ``max_skew`` and reply timestamps (e.g. a sandbox's
            virtual clock ``state.clock.now``).

    Raises:
        ValidationError: an argument is out of range, or an AES key without ``appid``.
        ImportError: an AES key is given but ``cryptography`` (the ``events`` extra) is missing.

    See https://developers.weixin.qq.com/doc/service/guide/product/message/Receiving_event_pushes.html
    """

    def __init__(
        self,
        token: str,
        *,
        encoding_aes_key: str | None = None,
        previous_aes_key: str | None = None,
        appid: str | None = None,
        dedup: Dedup | None = None,
        max_skew: float | None = 300.0,
        max_body: int = 65536,
        reply_deadline: float = 4.5,
        shutdown_grace: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValidationError("token", "must be a non-empty string (the push Token)")
        if isinstance(max_body, bool) or not isinstance(max_body, int):
            raise ValidationError("max_body", f"must be an integer in 1..{MAX_BODY_LIMIT}")
        if not 1 <= max_body <= MAX_BODY_LIMIT:
            raise ValidationError("max_body", f"must be in 1..{MAX_BODY_LIMIT}, got {max_body}")
        self.max_skew = None if max_skew is None else _number("max_skew", max_skew, 0, 86_400)
        self.max_body = max_body
        self.reply_deadline = _number("reply_deadline", reply_deadline, 0, WECHAT_TIMEOUT)
        if self.reply_deadline >= WECHAT_TIMEOUT:
            raise ValidationError("reply_deadline", "must be below WeChat's 5 s timeout")
        self.shutdown_grace = _number("shutdown_grace", shutdown_grace, 0, 3600, open_low=False)
        if previous_aes_key is not None and encoding_aes_key is None:
            raise ValidationError("previous_aes_key", "needs encoding_aes_key (the current key)")
        if encoding_aes_key is not None and not appid:
            raise ValidationError("appid", "is required with encoding_aes_key")
        keys = [k for k in (encoding_aes_key, previous_aes_key) if k is not None]
        for name, key in zip(("encoding_aes_key", "previous_aes_key"), keys, strict=False):
            aes_key(key, argument=name)  # a ValidationError names the argument, not the key
        self.appid = appid
        self._token = token
        self._cryptos = tuple(MessageCrypto(token, key, appid or "") for key in keys)
        self.dedup: Dedup = dedup if dedup is not None else MemoryDedup()
        self._clock = clock
        self._scan_handler: ScanHandler | None = None
        self._handlers: dict[str, EventHandler] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._warned_inline = False
        self._lifespan_opened = False

    def __repr__(self) -> str:
        mode = "aes" if self._cryptos else "plaintext"
        return f"Receiver(appid={self.appid!r}, mode={mode!r})"  # never the token or keys

    # -- registration ------------------------------------------------------------------------
    def on_scan(self, handler: S) -> S:
        """Register the handler of every scan (a follow by scanning, and ``SCAN``); decorator.

        The handler gets a :class:`QrScan`; a ``str`` it returns is sent back as a passive
        text reply, ``None`` answers ``success``. A second registration replaces the first.
        """
        self._scan_handler = handler
        return handler

    def on(self, name: str) -> Callable[[E], E]:
        """Register the handler of one ``Event`` (or ``MsgType``) by name; decorator.

        Names match case-insensitively (WeChat mixes ``subscribe`` and ``SCAN``). A plain
        follow arrives as ``on("subscribe")``; a scan goes to :meth:`on_scan`, or, when no
        scan handler is registered, to ``on("subscribe")`` / ``on("SCAN")`` as an
        :class:`Event`.

        Args:
            name: e.g. ``"unsubscribe"``, ``"subscribe"``, ``"LOCATION"``, ``"text"``.
        """
        if not isinstance(name, str) or not name:
            raise ValidationError("name", "must be a non-empty Event or MsgType name")

        def register(handler: E) -> E:
            self._handlers[name.lower()] = handler
            return handler

        return register

    # -- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> Receiver:
        if self._group is not None:
            raise RuntimeError("this Receiver is already open")
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        group, self._group = self._group, None
        if group is None:
            return
        group.cancel_scope.deadline = anyio.current_time() + self.shutdown_grace
        # Background handlers never raise (failures are logged), and the block's own exception
        # is not the task group's business: it propagates as is, not in an ExceptionGroup.
        await group.__aexit__(None, None, None)

    # -- the protocol ------------------------------------------------------------------------
    async def handle(self, method: str, query: Mapping[str, str], body: bytes) -> Answer:
        """Answer one request WeChat sent to the server URL.

        ``GET`` is the URL verification: a valid ``signature`` answers ``echostr`` unchanged.
        ``POST`` is a push: checked (``signature`` always; ``msg_signature``, decryption and
        the appid in compatible/safe mode), parsed, de-duplicated and given to its handler.

        Args:
            method: ``"GET"`` or ``"POST"``.
            query: the query parameters (first value of each).
            body: the request body.

        Returns:
            the :class:`Answer`. Refusals: 403 (signature, stale timestamp), 413 (body over
            ``max_body``), 400 (malformed, DOCTYPE/ENTITY, bad padding, wrong appid); their
            body never says which check failed, ``Answer.error`` and the log do. A handler
            that raised gives 500 (so that WeChat's resend is processed).

        Raises:
            ValidationError: ``method``, ``query`` or ``body`` has the wrong type (a bug in
                the caller, not in the request).
        """
        if not isinstance(method, str):
            raise ValidationError("method", "must be a str such as 'GET' or 'POST'")
        if not isinstance(query, Mapping):
            raise ValidationError("query", "must be a mapping of query parameter -> str")
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif isinstance(body, bytearray | memoryview):
            body = bytes(body)
        elif not isinstance(body, bytes):
            raise ValidationError("body", f"must be bytes, got {type(body).__name__}")
        # A parameter that is not one str (a framework's list of repeats) counts as absent.
        query = {str(k): v for k, v in query.items() if isinstance(v, str)}
        # The deadline counts from the arrival, not from the handler's start: verification,
        # decryption and the dedup claim (a Redis round trip) are part of WeChat's 5 s.
        deadline = anyio.current_time() + self.reply_deadline
        try:
            return await self._handle(method.upper(), query, body, deadline)
        except ReceiveError as exc:
            log.warning("push refused: %s: %s", type(exc).__name__, exc)
            return _refusal(exc.status, exc)

    def _verify(self, query: Mapping[str, str]) -> tuple[str, str]:
        timestamp, nonce = query.get("timestamp"), query.get("nonce")
        signature = query.get("signature")
        if timestamp is None or nonce is None or signature is None:
            raise SignatureError("signature, timestamp or nonce missing from the query")
        if not check_signature(self._token, timestamp=timestamp, nonce=nonce, signature=signature):
            raise SignatureError("signature does not match")
        if self.max_skew is not None:
            try:
                skew = abs(self._clock() - int(timestamp))
            except ValueError:
                raise SignatureError("timestamp is not an integer") from None
            if skew > self.max_skew:
                raise SignatureError(f"timestamp is {skew:.0f} s off (max_skew; a replay?)")
        return timestamp, nonce

    def _decrypt(
        self, encrypt: str, query: Mapping[str, str], timestamp: str, nonce: str
    ) -> tuple[str, MessageCrypto]:
        if not self._cryptos:
            raise DecryptError("encrypted push, but no encoding_aes_key is configured", code=-40004)
        msg_signature = query.get("msg_signature")
        if msg_signature is None:
            raise SignatureError("encrypted push without msg_signature")
        errors: list[ReceiveError] = []
        for crypto in self._cryptos:  # the current key, then the previous one
            try:
                plaintext = crypto.decrypt(
                    encrypt, msg_signature=msg_signature, timestamp=timestamp, nonce=nonce
                )
            except (DecryptError, AppIdMismatch) as exc:
                errors.append(exc)
                continue
            return plaintext, crypto
        # A key that decrypted a well-formed frame naming another appid says more than padding.
        raise next((e for e in errors if isinstance(e, AppIdMismatch)), errors[0])

    async def _handle(
        self, method: str, query: Mapping[str, str], body: bytes, deadline: float
    ) -> Answer:
        if method not in ("GET", "POST"):
            return _refusal(405)
        if len(body) > self.max_body:
            raise MalformedMessage(f"body over max_body ({self.max_body} bytes)", status=413)
        timestamp, nonce = self._verify(query)
        if method == "GET":
            echostr = query.get("echostr")
            if echostr is None:
                raise MalformedMessage("URL verification without echostr")
            return Answer(200, _TEXT, echostr.encode("utf-8"))
        fields, fmt = parse_fields(body)
        crypto: MessageCrypto | None = None
        if query.get("encrypt_type", "raw").lower() == "aes" or "Encrypt" in fields:
            encrypt = fields.get("Encrypt")
            if not encrypt:
                raise MalformedMessage("encrypt_type=aes but the body has no Encrypt field")
            # Compatible mode carries plaintext too: only the encrypted copy is trusted.
            plaintext, crypto = self._decrypt(encrypt, query, timestamp, nonce)
            fields, _ = parse_fields(plaintext)
        event = to_event(fields)
        return await self._dispatch(event, fmt, crypto, nonce, deadline)

    def _handler_for(
        self, event: QrScan | Event
    ) -> tuple[Callable[[Any], Awaitable[str | None]] | None, QrScan | Event]:
        if isinstance(event, QrScan):
            if self._scan_handler is not None:
                return self._scan_handler, event
            # No scan handler: the scan is the subscribe/SCAN event it arrived as.
            name = event.raw.get("Event", "subscribe" if event.new_follower else "SCAN")
            event = Event(name, event.openid, event.create_time, event.account, event.raw)
        return self._handlers.get(event.name.lower()), event

    async def _dispatch(
        self,
        event: QrScan | Event,
        fmt: str,
        crypto: MessageCrypto | None,
        nonce: str,
        deadline: float,
    ) -> Answer:
        handler, argument = self._handler_for(event)
        if handler is None:
            return _SUCCESS
        key = dedup_key(event)
        try:
            first = await self.dedup.claim(key)
        except DedupError as exc:
            log.warning("dedup store failed (%s); handling the push anyway", exc)
            first = True
        if not first:
            log.info(
                "duplicate delivery of a %s push answered without its handler", event_name(event)
            )
            return _SUCCESS
        run = await self._run(handler, argument, key, deadline)
        if run.error is not None:
            log.error(
                "the %s handler raised; answered 500 so that WeChat resends",
                event_name(event),
                exc_info=run.error,
            )
            return _refusal(500)
        if run.abandoned or not isinstance(run.value, str) or not run.value:
            return _SUCCESS
        return self._reply(event, run.value, fmt, crypto, nonce)

    async def _release(self, key: str) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self.dedup.release(key)
        except DedupError as exc:
            log.warning("dedup store failed to release a key (%s)", exc)

    async def _run(
        self, handler: Callable[[Any], Awaitable[Any]], argument: Any, key: str, deadline: float
    ) -> _Run:
        run = _Run()

        async def invoke() -> None:
            try:
                run.value = await handler(argument)
            except Exception as exc:
                run.error = exc
                await self._release(key)  # released before the 500 goes out
            except BaseException:  # cancelled (shutdown): let a resend process it
                await self._release(key)
                raise
            finally:
                run.done.set()
            if run.abandoned and run.error is not None:
                log.error("a handler failed after the reply deadline", exc_info=run.error)

        if self._group is None:
            if not self._warned_inline:
                self._warned_inline = True
                log.warning(
                    "Receiver not opened (async with receiver / ASGI lifespan): handlers run "
                    "inline and a slow one delays the answer past reply_deadline"
                )
            await invoke()
            return run
        self._group.start_soon(invoke)
        try:
            with anyio.CancelScope(deadline=deadline):
                await run.done.wait()
        finally:  # the deadline passed, or the request itself was cancelled (client gone)
            run.abandoned = not run.done.is_set()
        if run.abandoned:
            log.warning(
                "a handler is still running after reply_deadline (%.1f s): answered success, "
                "it continues in the background",
                self.reply_deadline,
            )
        return run

    def _reply(
        self,
        event: QrScan | Event,
        content: str,
        fmt: str,
        crypto: MessageCrypto | None,
        nonce: str,
    ) -> Answer:
        now = int(self._clock())
        fields: dict[str, str | int] = {
            "ToUserName": event.openid,
            "FromUserName": event.account,
            "CreateTime": now,
            "MsgType": "text",
            "Content": content,
        }
        body = _render(fields, fmt)
        if crypto is not None:
            sealed = crypto.encrypt(body.decode("utf-8"), nonce=nonce, timestamp=now)
            body = _render(
                {
                    "Encrypt": sealed.encrypt,
                    "MsgSignature": sealed.msg_signature,
                    "TimeStamp": int(sealed.timestamp),
                    "Nonce": sealed.nonce,
                },
                fmt,
            )
        return Answer(200, _CONTENT_TYPES[fmt], body)

    # -- adapters ----------------------------------------------------------------------------
    @functools.cached_property
    def asgi_app(self) -> ASGIApp:
        """The receiver as an ASGI 3 app.

        ``app.mount("/wechat", receiver.asgi_app)`` (Starlette/FastAPI mounts match below the
        path: configure ``.../wechat/``), or ``app.add_route("/wechat", receiver.asgi_app,
        methods=["GET", "POST"])`` for the exact path. It reads at most ``max_body + 1`` bytes
        of a body. As the top-level app it runs the ASGI lifespan (opening the receiver's task
        group); mounted, open it in your app's lifespan with ``async with receiver``.
        """
        from ._adapters import ASGIApp

        return ASGIApp(self)

    async def aiohttp_handler(self, request: AiohttpRequest) -> AiohttpResponse:
        """The receiver as an aiohttp handler: ``router.add_route("*", "/wechat", ...)``.

        Open the receiver in a ``cleanup_ctx`` (``async with receiver: yield``) so that slow
        handlers finish in the background.
        """
        from ._adapters import aiohttp_handler

        return await aiohttp_handler(self, request)


def event_name(event: QrScan | Event) -> str:
    """A short name of a push for log lines (no user data)."""
    if isinstance(event, QrScan):
        return "subscribe scan" if event.new_follower else "SCAN"
    return event.name
