"""Helpers of the scan-login tests (a plain module: tests/ has no packages)."""

from __future__ import annotations

import hashlib
import html
import itertools
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
from mockwechat import FakeWeChat, body_of

from wxqr.login import ScanLogin


@attrs.frozen
class FakeScan:
    """A stand-in for ``wxqr.events.QrScan`` with the attributes ``on_scan`` reads."""

    openid: str
    scene: str
    ticket: str
    new_follower: bool = False
    create_time: int = 1_700_000_000
    account: str = "gh_test"
    raw: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class FakeText:
    """A stand-in for the ``wxqr.events.Event`` of a text message."""

    openid: str
    content: str
    name: str = "text"
    create_time: int = 1_700_000_100
    account: str = "gh_test"

    @property
    def raw(self) -> dict[str, str]:
        return {"MsgType": "text", "Content": self.content, "FromUserName": self.openid}


class Clock:
    """A hand-moved Unix clock for ``ScanLogin(clock=...)``."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CodeIssuer:
    """``qrcode/create`` answers of a fake WeChat: a distinct ticket per call, scenes recorded."""

    def __init__(self) -> None:
        self.scenes: dict[str, str] = {}  # ticket -> scene_str
        self.bodies: list[dict[str, Any]] = []
        self._n = itertools.count(1)

    def __call__(self, request: httpx.Request) -> dict[str, Any]:
        body = body_of(request)
        self.bodies.append(body)
        n = next(self._n)
        ticket = f"gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xLzAy{n:04d}+/=="
        self.scenes[ticket] = body["action_info"]["scene"]["scene_str"]
        return {
            "ticket": ticket,
            "expire_seconds": body["expire_seconds"],
            "url": f"http://weixin.qq.com/q/02code{n:04d}",
        }

    def scan_of(self, ticket: str, openid: str = "oUSER-1", **fields: Any) -> FakeScan:
        """The scan WeChat would push for ``ticket``'s code."""
        return FakeScan(openid=openid, scene=self.scenes[ticket], ticket=ticket, **fields)


def fake_login(store: Any, **options: Any) -> tuple[ScanLogin, FakeWeChat, CodeIssuer]:
    """A ScanLogin on a FakeWeChat whose qrcode/create issues distinct codes."""
    fake = FakeWeChat()
    issuer = CodeIssuer()
    fake.reply_always("cgi-bin/qrcode/create", issuer)
    return ScanLogin(fake.client(), store=store, **options), fake, issuer


def ticket_in(page: str) -> tuple[str, str]:
    """The QR image URL the example's login page shows, and the ticket in it."""
    (src,) = re.findall(r'<img id="qr" src="([^"]+)"', page)
    url = html.unescape(src)
    (ticket,) = parse_qs(urlsplit(url).query)["ticket"]
    return url, ticket


def text_push(token: str, openid: str, content: str, now: int) -> tuple[dict[str, str], bytes]:
    """A signed plaintext text-message push, as WeChat sends it: ``(query, body)``."""
    timestamp, nonce = str(now), "271828"
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    body = (
        "<xml><ToUserName><![CDATA[gh_5a4db0c0ffee]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{now}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{now}{len(content)}</MsgId></xml>"
    )
    query = {"signature": signature, "timestamp": timestamp, "nonce": nonce, "openid": openid}
    return query, body.encode()
