"""Mini Program codes: ``createwxaqrcode`` (C), ``getwxacode`` (A), ``getwxacodeunlimit`` (B).

Reference §6. Success: HTTP 200, PNG bytes labelled ``image/jpeg`` (as WeChat labels them, even
for transparent PNGs); errors: HTTP 200 JSON labelled ``application/json; encoding=utf-8``.
What each image encodes is documented in ``_images.py``. Checks, in order:

* body not a JSON object → 40159 (A, C) / 40169 (B);
* ``scancode_time`` as a body field, or as a query parameter of ``path`` / ``page`` → 85096;
* C: ``path`` missing, empty or over 128 UTF-8 bytes → 40159; A: over 1024 characters → 40159;
* B: ``scene`` missing, empty or over 32 characters → 40169; characters outside
  ``0-9a-zA-Z!#$&'()*+,/:;=?@-._~`` → 40129; ``page`` with a leading ``/`` or a query → 41030;
  with ``check_path`` (default true) a ``page`` not in ``Account.pages`` — or any page when the
  Mini Program is unreleased — → 41030;
* ``env_version`` not release/trial/develop, ``width`` not a number, malformed ``line_color``
  (components 0..255, ints or numeric strings), non-boolean flags → 40097;
* ``width`` outside 280..1280 is clamped (WeChat documents no error; observed images are never
  below 280 px); default 430. ``auto_color`` draws black (a real service picks logo colours).
* A+C share ``Account.wxacode_limit`` (100,000 lifetime codes) → 45029; B is limited to
  ``Account.unlimited_per_minute`` (5000) calls per virtual minute → ``unlimited_rate_errcode``
  (45011; the legacy doc said 45009, set it to reproduce that).
* ``getwxacode`` and ``createwxaqrcode`` answers (success and error) carry ``Num-Used``: codes
  generated so far by the two together.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._http import Call, Reject, Response, as_bool, as_int
from ._images import qr_png
from ._state import Account

__all__ = ["handle_createwxaqrcode", "handle_getwxacode", "handle_getwxacodeunlimit"]

MIN_WIDTH, MAX_WIDTH, DEFAULT_WIDTH = 280, 1280, 430
_SCENE_CHARS = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]*")
_ENV_VERSIONS = ("release", "trial", "develop")


def _has_scancode_time(call: Call, *texts: object) -> bool:
    if "scancode_time" in call.body:
        return True
    for text in texts:
        if isinstance(text, str) and "?" in text:
            query = text.split("?", 1)[1]
            if any(name == "scancode_time" for name, _ in parse_qsl(query, True)):
                return True
    return False


def _style(call: Call, *, colours: bool) -> dict[str, Any]:
    body = call.body
    width = as_int(body.get("width", DEFAULT_WIDTH))
    if width is None:
        raise Reject(40097)
    style: dict[str, Any] = {"width": min(MAX_WIDTH, max(MIN_WIDTH, width))}
    if not colours:
        return style
    auto_color = as_bool(body.get("auto_color"), False)
    is_hyaline = as_bool(body.get("is_hyaline"), False)
    if auto_color is None or is_hyaline is None:
        raise Reject(40097)
    dark = (0, 0, 0)
    line_color = body.get("line_color")
    if line_color is not None and not auto_color:
        if not isinstance(line_color, dict):
            raise Reject(40097)
        rgb = tuple(as_int(line_color.get(c, 0)) for c in "rgb")
        if any(v is None or not 0 <= v <= 255 for v in rgb):
            raise Reject(40097)
        dark = (int(rgb[0] or 0), int(rgb[1] or 0), int(rgb[2] or 0))
    style["dark"] = dark
    style["transparent"] = is_hyaline
    return style


def _env_version(call: Call) -> None:
    if call.body.get("env_version", "release") not in _ENV_VERSIONS:
        raise Reject(40097)


def _image(content: str, style: dict[str, Any]) -> Response:
    return Response(200, [("Content-Type", "image/jpeg")], qr_png(content, **style))


def _count_ac(account: Account) -> None:
    if account.wxacode_used >= account.wxacode_limit:
        raise Reject(45029)
    account.wxacode_used += 1


def _with_num_used(call: Call, make: Callable[[Account], Response]) -> Response:
    # Every A and C answer, error or image, reports the codes used so far in ``Num-Used``.
    account = call.account
    assert account is not None
    try:
        response = make(account)
    except Reject as reject:
        reject.headers = [("Num-Used", str(account.wxacode_used))]
        raise
    response.headers.append(("Num-Used", str(account.wxacode_used)))
    return response


def _createwxaqrcode(call: Call, account: Account) -> Response:
    path = call.body.get("path")
    if _has_scancode_time(call, path):
        raise Reject(85096)
    if not isinstance(path, str) or not path or len(path.encode("utf-8")) > 128:
        raise Reject(40159)
    style = _style(call, colours=False)
    _count_ac(account)
    return _image(path, style)


def handle_createwxaqrcode(call: Call) -> Response:
    """``POST cgi-bin/wxaapp/createwxaqrcode`` ``{path, width}`` (interface C), ``Num-Used``."""
    return _with_num_used(call, lambda account: _createwxaqrcode(call, account))


def _getwxacode(call: Call, account: Account) -> Response:
    path = call.body.get("path")
    if _has_scancode_time(call, path):
        raise Reject(85096)
    if not isinstance(path, str) or not path or len(path) > 1024:
        raise Reject(40159)
    _env_version(call)
    style = _style(call, colours=True)
    _count_ac(account)
    return _image(path, style)


def handle_getwxacode(call: Call) -> Response:
    """``POST wxa/getwxacode`` (interface A); every answer carries ``Num-Used``."""
    return _with_num_used(call, lambda account: _getwxacode(call, account))


def handle_getwxacodeunlimit(call: Call) -> Response:
    """``POST wxa/getwxacodeunlimit`` (interface B): encodes ``f"{page}?scene={scene}"``."""
    account = call.account
    assert account is not None
    body = call.body
    page = body.get("page")
    if _has_scancode_time(call, page):
        raise Reject(85096)
    scene = body.get("scene")
    if isinstance(scene, int) and not isinstance(scene, bool):
        scene = str(scene)
    if not isinstance(scene, str) or not scene or len(scene) > 32:
        raise Reject(40169)
    if not _SCENE_CHARS.fullmatch(scene):
        raise Reject(40129)
    if page is None or page == "":
        page = account.pages[0] if account.pages else "pages/index/index"
    if not isinstance(page, str) or page.startswith("/") or urlsplit(page).query or "?" in page:
        raise Reject(41030)
    check_path = as_bool(body.get("check_path"), True)
    if check_path is None:
        raise Reject(40097)
    if check_path and (not account.released or page not in account.pages):
        raise Reject(41030)
    _env_version(call)
    style = _style(call, colours=True)
    minute = int(call.now // 60)
    if account.used("getwxacodeunlimit", minute) >= account.unlimited_per_minute:
        raise Reject(account.unlimited_rate_errcode)
    account.bump("getwxacodeunlimit", minute)
    return _image(f"{page}?scene={scene}", style)
