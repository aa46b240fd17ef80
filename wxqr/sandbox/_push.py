"""The sandbox pushes scans: what WeChat sends to the account's server URL when a code is
scanned (reference/events.md §1.3, §1.4, §1.7).

``await state.scan(ticket, openid=..., following=...)`` looks the ticket up (unknown or expired:
nothing is pushed), and pushes ``subscribe`` + ``EventKey=qrscene_<scene>`` for a user who
follows by scanning, or ``SCAN`` + ``EventKey=<scene>`` for a follower, with the code's
``Ticket``. A non-follower who scans but does not follow (``follow=False``) pushes nothing, as
on WeChat. The push is signed (``signature`` over token/timestamp/nonce) and, in ``safe`` or
``compatible`` mode, encrypted (``encrypt_type=aes``, ``msg_signature``, ``Encrypt``).

Delivery is WeChat's: an answer within ``answer_timeout`` (5 s) with HTTP 200 ends it; a
timeout, a connection error or another status is followed by a resend, up to ``deliveries``
(3) in total, each with a fresh timestamp and nonce but the same ``CreateTime``. Whether
WeChat resends after a fast non-200 answer is not documented **(inferred)**: it is what a
receiver answering 500 relies on. The ``duplicate`` fault delivers a push again on purpose
after it succeeded. When the virtual clock is frozen, a timed-out delivery moves it forward by
``answer_timeout``, as WeChat's wait would.

Served (``wxqr sandbox --push-url ...``), ``POST /sandbox/scan`` with a JSON body
``{"ticket": ..., "openid": ..., "following": null|bool, "follow": true}`` triggers a scan.
"""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import anyio
import attrs
import httpx

from ..errors import ValidationError
from ._http import ASGIApp, Request, Response, json_response

if TYPE_CHECKING:
    from ._state import SandboxState

__all__ = ["MODES", "Delivery", "Push", "PushConfig", "handle_scan_control", "scan"]

#: The encryption modes of the server configuration page.
MODES: Final = ("plain", "compatible", "safe")
CONTROL_PATH: Final = "/sandbox/scan"


@attrs.define
class PushConfig:
    """Where and how the sandbox pushes events (the account's server configuration).

    Attributes:
        token: the Token pushes are signed with.
        url: the server URL (``http://host:port/path``); with ``app`` only its path is used.
        app: an in-process ASGI app to push to instead of a socket (e.g. your FastAPI app).
        encoding_aes_key: the 43-character EncodingAESKey (``compatible`` / ``safe`` mode).
        mode: ``plain``, ``compatible`` or ``safe``.
        appid: the AppID written into encrypted frames.
        account: the ``ToUserName`` (the account's original id).
        answer_timeout: seconds WeChat waits for an answer (5).
        deliveries: deliveries in total when answers fail (3).
        duplicate: the fault: extra deliveries of every successful push, on purpose.
        followers: OpenIDs that follow the account (``scan(following=None)`` reads it; a
            ``subscribe`` push adds the scanner).
    """

    token: str
    url: str = "http://receiver/"
    app: ASGIApp | None = None
    encoding_aes_key: str | None = None
    mode: str = "plain"
    appid: str = ""
    account: str = "gh_5a4db0c0ffee"
    answer_timeout: float = 5.0
    deliveries: int = 3
    duplicate: int = 0
    followers: set[str] = attrs.field(factory=set)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token:
            raise ValidationError("token", "must be a non-empty string")
        if self.mode not in MODES:
            raise ValidationError("mode", f"must be one of {', '.join(MODES)}")
        if self.mode != "plain" and not self.encoding_aes_key:
            raise ValidationError("encoding_aes_key", f"is required in {self.mode} mode")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError("url", "must be an http:// or https:// URL")
        if not 0 < self.answer_timeout <= 60:
            raise ValidationError("answer_timeout", "must be in (0, 60] seconds")
        if not 1 <= self.deliveries <= 10:
            raise ValidationError("deliveries", "must be in 1..10")
        if not 0 <= self.duplicate <= 10:
            raise ValidationError("duplicate", "must be in 0..10")

    def __repr__(self) -> str:
        return f"PushConfig(url={self.url!r}, mode={self.mode!r})"  # never the token or key


@attrs.define
class Delivery:
    """One HTTP delivery of a push.

    Attributes:
        attempt: 1, 2, 3... in order.
        status: the HTTP status answered; ``None`` on timeout or connection error.
        body: the answer's body.
        error: ``"timeout"`` or the connection error's type; ``None`` when answered.
        elapsed: seconds until the answer (or the failure).
        duplicate: sent by the ``duplicate`` fault after a successful delivery.
    """

    attempt: int
    status: int | None
    body: bytes = b""
    error: str | None = None
    elapsed: float = 0.0
    duplicate: bool = False


@attrs.define
class Push:
    """A scan the sandbox pushed, with its deliveries.

    Attributes:
        ticket: the code's ticket.
        openid: the scanner.
        event: ``"subscribe"`` or ``"SCAN"``.
        event_key: ``qrscene_<scene>`` or ``<scene>``.
        create_time: the push's ``CreateTime``.
        message: the plaintext XML (before any encryption).
        deliveries: every :class:`Delivery`, in order.
    """

    ticket: str
    openid: str
    event: str
    event_key: str
    create_time: int
    message: str
    deliveries: list[Delivery] = attrs.field(factory=list)

    @property
    def delivered(self) -> bool:
        """Whether some delivery was answered with HTTP 200."""
        return any(d.status == 200 for d in self.deliveries)


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _message(config: PushConfig, openid: str, now: int, event: str, key: str, ticket: str) -> str:
    return (
        f"<xml><ToUserName>{_cdata(config.account)}</ToUserName>"
        f"<FromUserName>{_cdata(openid)}</FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event>{_cdata(event)}</Event><EventKey>{_cdata(key)}</EventKey>"
        f"<Ticket>{_cdata(ticket)}</Ticket></xml>"
    )


def _request(
    config: PushConfig, message: str, openid: str, timestamp: int, nonce: str
) -> tuple[dict[str, str], bytes]:
    from ..events._signature import sign

    stamp = str(timestamp)
    query = {"signature": sign(config.token, stamp, nonce), "timestamp": stamp, "nonce": nonce}
    query["openid"] = openid
    if config.mode == "plain":
        return query, message.encode("utf-8")
    from ..events import MessageCrypto

    assert config.encoding_aes_key is not None
    crypto = MessageCrypto(config.token, config.encoding_aes_key, config.appid)
    sealed = crypto.encrypt(message, nonce=nonce, timestamp=stamp)
    query.update(encrypt_type="aes", msg_signature=sealed.msg_signature)
    encrypt = f"<Encrypt>{_cdata(sealed.encrypt)}</Encrypt>"
    if config.mode == "safe":
        body = f"<xml><ToUserName>{_cdata(config.account)}</ToUserName>{encrypt}</xml>"
    else:  # compatible: the plaintext fields and the ciphertext
        body = message.removesuffix("</xml>") + encrypt + "</xml>"
    return query, body.encode("utf-8")


async def _deliver(
    http: httpx.AsyncClient,
    state: SandboxState,
    config: PushConfig,
    push: Push,
    rng: random.Random,
    *,
    duplicate: bool,
) -> Delivery:
    timestamp = int(state.clock.now())
    nonce = str(rng.randrange(10**8, 10**10))
    query, body = _request(config, push.message, push.openid, timestamp, nonce)
    delivery = Delivery(attempt=len(push.deliveries) + 1, status=None, duplicate=duplicate)
    started = time.monotonic()
    headers = {"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0 (wxqr sandbox push)"}
    with anyio.move_on_after(config.answer_timeout) as scope:
        try:
            answer = await http.post(config.url, params=query, content=body, headers=headers)
        except httpx.HTTPError as exc:
            delivery.error = type(exc).__name__
        else:
            delivery.status, delivery.body = answer.status_code, answer.content
    if scope.cancelled_caught:
        delivery.error = "timeout"
        if state.clock.frozen:
            state.clock.advance(config.answer_timeout)
    delivery.elapsed = time.monotonic() - started
    push.deliveries.append(delivery)
    return delivery


async def scan(
    state: SandboxState,
    ticket: Any,
    *,
    openid: str | None = None,
    following: bool | None = None,
    follow: bool = True,
) -> Push | None:
    """Scan a code the sandbox issued, and push what WeChat would (see the module docstring).

    Args:
        state: the sandbox.
        ticket: the ticket (a ``str`` or a :class:`wxqr.QrTicket`).
        openid: the scanner; default: a stable fake OpenID.
        following: whether the scanner already follows the account; ``None``: as the sandbox
            remembers (``PushConfig.followers``).
        follow: for a non-follower, whether they follow after scanning (``False``: nothing is
            pushed, as on WeChat).

    Returns:
        the :class:`Push` with its deliveries, or ``None`` when nothing was pushed (unknown or
        expired ticket, a non-follower who did not follow).

    Raises:
        RuntimeError: no push is configured (``state.configure_push(...)``).
        ValidationError: ``ticket``, ``openid`` or ``following`` has the wrong type.
    """
    config = state.push
    if config is None:
        raise RuntimeError("no push configured: call state.configure_push(url, token=...) first")
    value = getattr(ticket, "ticket", ticket)
    if not isinstance(value, str) or not value:
        raise ValidationError("ticket", "must be a ticket string or a wxqr.QrTicket")
    if openid is not None and (not isinstance(openid, str) or not openid):
        raise ValidationError("openid", "must be a non-empty string")
    if following is not None and not isinstance(following, bool):
        raise ValidationError("following", "must be True, False or None")
    with state.lock:
        issued = state.tickets.get(value)
        now = state.clock.now()
        if issued is None or (issued.expires_at is not None and now >= issued.expires_at):
            return None
        rng = random.Random(f"{state.seed}:push:{len(state.pushes)}")
        if openid is None:
            openid = "oSbx" + "".join(rng.choice("0123456789abcdefABCDEF-_") for _ in range(24))
        is_follower = openid in config.followers if following is None else following
        if not is_follower and not follow:
            return None
        scene = str(issued.scene)
        event, key = ("SCAN", scene) if is_follower else ("subscribe", "qrscene_" + scene)
        message = _message(config, openid, int(now), event, key, value)
        push = Push(value, openid, event, key, int(now), message)
        state.pushes.append(push)
        config.followers.add(openid)
    transport = httpx.ASGITransport(app=config.app) if config.app is not None else None
    async with httpx.AsyncClient(transport=transport, timeout=config.answer_timeout) as http:
        for _ in range(config.deliveries):
            delivery = await _deliver(http, state, config, push, rng, duplicate=False)
            if delivery.status == 200:
                for _ in range(config.duplicate):
                    await _deliver(http, state, config, push, rng, duplicate=True)
                break
    return push


async def handle_scan_control(state: SandboxState, request: Request) -> Response:
    """``POST /sandbox/scan``: trigger a scan from outside (a browser, another language)."""
    if request.method != "POST":
        return json_response({"error": "use POST"}, status=405)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("ticket"), str):
        return json_response({"error": 'expected a JSON object with "ticket"'}, status=400)
    following = body.get("following")
    openid = body.get("openid")
    if following is not None and not isinstance(following, bool):
        return json_response({"error": '"following" must be true, false or null'}, status=400)
    if openid is not None and (not isinstance(openid, str) or not openid):
        return json_response({"error": '"openid" must be a non-empty string'}, status=400)
    follow = body.get("follow", True)
    if not isinstance(follow, bool):
        return json_response({"error": '"follow" must be true or false'}, status=400)
    if state.push is None:
        return json_response({"error": "no push configured (--push-url/--push-token)"}, status=409)
    push = await scan(
        state,
        body["ticket"],
        openid=openid,
        following=following,
        follow=follow,
    )
    if push is None:
        return json_response({"pushed": False})
    return json_response(
        {
            "pushed": True,
            "delivered": push.delivered,
            "event": push.event,
            "event_key": push.event_key,
            "openid": push.openid,
            "deliveries": [
                {"status": d.status, "error": d.error, "duplicate": d.duplicate}
                for d in push.deliveries
            ],
        }
    )
