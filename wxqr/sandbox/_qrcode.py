"""``cgi-bin/qrcode/create`` and the mp host's ``cgi-bin/showqrcode`` (reference §3).

Choices where the official docs are silent:

* ``expire_seconds`` (temporary codes): default 60; values above 2592000 are capped to 2592000
  (the answer's ``expire_seconds`` shows the cap); non-integers or values < 1 answer 40053.
* Temporary ``scene_id``: any non-zero 32-bit integer (-2**31 .. 2**32-1); permanent: 1..100000.
  Numeric strings are accepted, as WeChat does.
* Every permanent creation counts towards ``Account.permanent_qrcode_limit`` (45029 beyond).
* Tickets are base64 and always contain ``+``, ``/`` and ``==``, so a client that forgets to
  URL-encode them in ``showqrcode?ticket=`` gets a 404 (``+`` decodes to a space).
"""

from __future__ import annotations

import base64

from ._http import Call, Reject, Response, as_int, html_response, json_response
from ._images import qr_png
from ._state import Ticket

__all__ = ["handle_create", "handle_showqrcode"]

_ACTIONS = {
    "QR_SCENE": (True, False),  # (temporary, string scene)
    "QR_STR_SCENE": (True, True),
    "QR_LIMIT_SCENE": (False, False),
    "QR_LIMIT_STR_SCENE": (False, True),
}
MAX_EXPIRE = 2_592_000
DEFAULT_EXPIRE = 60

_NOT_FOUND_PAGE = (
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    "<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _scene(call: Call, temporary: bool, string_scene: bool) -> int | str:
    info = call.body.get("action_info")
    scene = info.get("scene") if isinstance(info, dict) else None
    if not isinstance(scene, dict):
        raise Reject(40053)
    if string_scene:
        scene_str = scene.get("scene_str")
        if not isinstance(scene_str, str) or not 1 <= len(scene_str) <= 64:
            raise Reject(40053)
        return scene_str
    scene_id = as_int(scene.get("scene_id"))
    if scene_id is None:
        raise Reject(40053)
    valid = (
        (-(2**31) <= scene_id < 2**32 and scene_id != 0)
        if temporary
        else (1 <= scene_id <= 100_000)
    )
    if not valid:
        raise Reject(40053)
    return scene_id


def _new_ticket(call: Call, url: str) -> str:
    rng = call.state.random
    # 0xFB 0xFF 0xBF at a 3-byte boundary encodes to "+/+/"; a length of 1 mod 3 ends in "==".
    head = bytes([0x81, 0x01]) + rng.randbytes(4)
    payload = head + b"\xfb\xff\xbf" + rng.randbytes(6) + url.encode() + rng.randbytes(4)
    payload += rng.randbytes((1 - len(payload)) % 3)
    return base64.b64encode(payload).decode()


def handle_create(call: Call) -> Response:
    """``POST cgi-bin/qrcode/create``: a temporary or permanent parametric QR code."""
    account = call.account
    assert account is not None
    action = call.body.get("action_name")
    if not isinstance(action, str) or action not in _ACTIONS:
        raise Reject(40052)
    temporary, string_scene = _ACTIONS[action]
    scene = _scene(call, temporary, string_scene)
    expire: int | None = None
    if temporary:
        raw = call.body.get("expire_seconds")
        expire = DEFAULT_EXPIRE if raw is None else as_int(raw)
        if expire is None or expire < 1:
            raise Reject(40053)
        expire = min(expire, MAX_EXPIRE)
    elif account.permanent_qrcodes >= account.permanent_qrcode_limit:
        raise Reject(45029)
    else:
        account.permanent_qrcodes += 1
    state = call.state
    url = "http://weixin.qq.com/q/02" + state.random_string(20)
    ticket = _new_ticket(call, url)
    state.tickets[ticket] = Ticket(
        ticket=ticket,
        url=url,
        appid=account.appid,
        action_name=action,
        scene=scene,
        created_at=call.now,
        expires_at=None if expire is None else call.now + expire,
    )
    if expire is None:
        return json_response({"ticket": ticket, "url": url})
    return json_response({"ticket": ticket, "expire_seconds": expire, "url": url})


def handle_showqrcode(call: Call) -> Response:
    """``GET mp.weixin.qq.com/cgi-bin/showqrcode?ticket=``: the QR image, or HTTP 404.

    The image is a PNG QR code of the ticket's ``url``, 430 px, labelled ``image/jpg`` (the
    non-standard MIME type WeChat documents).
    """
    ticket = call.state.tickets.get(call.request.query.get("ticket", ""))
    if ticket is None or (ticket.expires_at is not None and call.now >= ticket.expires_at):
        return html_response(_NOT_FOUND_PAGE, status=404)
    headers = [
        ("Content-Type", "image/jpg"),
        ("Accept-Ranges", "bytes"),
        ("Cache-control", "max-age=604800"),
    ]
    return Response(200, headers, qr_png(ticket.url, width=430))
