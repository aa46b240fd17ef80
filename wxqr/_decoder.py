"""Turn one HTTP answer into a result or a typed exception: a pure function, no I/O.

WeChat's answers cannot be taken at their word:

* errors arrive as HTTP 200 JSON, including on image endpoints;
* the content type lies both ways (``image/jpeg`` for PNG bytes, ``text/plain`` for JSON, and an
  emulator or proxy may label JSON as an image);
* proxies and outages produce HTML pages and truncated bodies.

So an image is returned only when the bytes *are* a complete image (magic bytes and trailer), the
body does not start with ``{``, and the content type does not claim JSON or HTML; anything that
starts with ``{`` is parsed as an errcode answer whatever its label; everything else is a
:class:`~wxqr.errors.ResponseDecodeError`. Error JSON is never returned as image bytes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, overload

from .errors import (
    HTTPStatusError,
    ResponseDecodeError,
    TicketNotFoundError,
    error_for,
)

__all__ = ["Image", "ImageKind", "decode", "image_kind", "loads"]

_fast_loads: Callable[[bytes], Any] | None
try:  # optional (``wxqr[speed]``): ~8x faster on WeChat's small answers
    import orjson

    _fast_loads = orjson.loads
except ImportError:  # pragma: no cover - exercised where orjson is absent
    _fast_loads = None


#: 19 digits in a row: maybe an integer beyond 64 bits, which orjson reads as a lossy float
#: (``-9223372036854775809`` -> ``-9.223372036854776e+18``) where json keeps it exact. Every
#: integer of at most 18 digits fits; a false alert (digits in a string) only costs speed.
#: Found as ``_LONG_DIGITS in body.translate(_DIGITS_ONLY)``: every digit becomes "0", every
#: other byte "x" -- about 5x quicker than a regex search, whose cost exceeded orjson's parse.
_DIGITS_ONLY: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
_LONG_DIGITS: Final = b"0" * 19


def loads(body: bytes) -> Any:
    """``json.loads`` (same results, same errors), through orjson when it is installed.

    Whatever orjson refuses (``NaN``, ``1e400``, lone surrogate escapes) gets a second opinion
    from ``json``, and bodies with integers orjson would turn into floats (beyond 64 bits) go
    to ``json`` directly, so the answer never depends on which is installed.
    """
    if _fast_loads is not None and _LONG_DIGITS not in body.translate(_DIGITS_ONLY):
        try:
            return _fast_loads(body)
        except ValueError:
            pass
    return json.loads(body)


Expect = Literal["json", "image"]
ImageKind = Literal["png", "jpeg", "gif"]

_CONTENT_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif"}


class Image(bytes):
    """An image WeChat returned: the bytes themselves, plus what is known about them.

    A ``bytes`` subclass, so ``image == b"..."``, ``isinstance(image, bytes)``, slicing and
    ``Path.write_bytes(image)`` keep working.

    Attributes:
        kind: ``"png"``, ``"jpeg"`` or ``"gif"``, from the bytes (WeChat's label lies: it
            calls PNGs ``image/jpeg``).
        content_type: the real MIME type for ``kind`` (``"image/png"``...), e.g. to serve it.
        num_used: the ``Num-Used`` header: how many of the account's 100,000 lifetime
            ``getwxacode`` + ``createwxaqrcode`` codes are used; ``None`` where WeChat sends
            none (showqrcode, getwxacodeunlimit) or it is not a number.
    """

    kind: ImageKind
    num_used: int | None

    def __new__(cls, data: bytes, *, kind: ImageKind, num_used: int | None = None) -> Image:
        image = super().__new__(cls, data)
        image.kind = kind
        image.num_used = num_used
        return image

    @property
    def content_type(self) -> str:
        """The MIME type of the bytes (not WeChat's ``Content-Type`` label)."""
        return _CONTENT_TYPES[self.kind]

    def __repr__(self) -> str:
        return f"<wxqr.Image {self.kind} {len(self)} bytes num_used={self.num_used!r}>"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_image, (bytes(self), self.kind, self.num_used))


def _rebuild_image(data: bytes, kind: ImageKind, num_used: int | None) -> Image:
    return Image(data, kind=kind, num_used=num_used)


def _num_used(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("num-used")
    if raw is None:
        raw = headers.get("Num-Used")  # a plain dict from a caller that kept WeChat's case
    if raw is None:
        return None
    raw = raw.strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 12 else None


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_TRAILER = b"IEND\xaeB`\x82"
_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_TRAILER = b"\xff\xd9"
_GIF_MAGICS = (b"GIF87a", b"GIF89a")
_WHITESPACE = b" \t\r\n\xef\xbb\xbf"  # a UTF-8 BOM counts as leading space


def image_kind(body: bytes) -> ImageKind | None:
    """Return ``"png"``, ``"jpeg"`` or ``"gif"`` for a *complete* image, else ``None``.

    A truncated image (right magic bytes, missing trailer) is not an image.
    """
    # Only the tail is inspected (trailing NUL padding tolerated): no copy of the whole image.
    if body.startswith(_PNG_MAGIC):
        return "png" if body[-64:].rstrip(b"\x00").endswith(_PNG_TRAILER) else None
    if body.startswith(_JPEG_MAGIC):
        # The EOI marker must END the body (NUL padding after it tolerated): an FF D9 a few
        # bytes before the end (an embedded thumbnail's EOI) does not make a cut JPEG complete.
        return "jpeg" if body[-64:].rstrip(b"\x00").endswith(_JPEG_TRAILER) else None
    if body.startswith(_GIF_MAGICS):
        return "gif" if body[-64:].rstrip(b"\x00").endswith(b";") else None
    return None


@overload
def decode(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    expect: Literal["json"],
    endpoint: str,
) -> dict[str, Any]: ...


@overload
def decode(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    expect: Literal["image"],
    endpoint: str,
) -> Image: ...


def decode(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    expect: Expect,
    endpoint: str,
) -> dict[str, Any] | Image:
    """Decode one answer.

    Args:
        status: HTTP status code.
        headers: response headers (``content-type`` and, for images, ``num-used`` are read;
            keys case-insensitive if the mapping is, e.g. ``httpx.Headers``; a plain dict must
            use lower case).
        body: the raw body.
        expect: ``"json"`` for JSON APIs, ``"image"`` for showqrcode and the wxacode calls.
        endpoint: the API path, used in exception messages (never a URL with a token).

    Returns:
        The JSON object (``dict``) for ``"json"``; an :class:`Image` (``bytes`` with
        ``kind``, ``content_type`` and ``num_used``) for ``"image"``.

    Raises:
        APIError: (a subclass per the catalogue) for a non-zero ``errcode``.
        TicketNotFoundError: showqrcode answered 404.
        HTTPStatusError: any other non-2xx status.
        ResponseDecodeError: HTML, malformed or truncated bodies, or JSON where an image was due.
    """
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not 200 <= status < 300:
        if status == 404 and endpoint == "cgi-bin/showqrcode":
            # WeChat documents "invalid ticket -> HTTP 404" (reference §3.2).
            raise TicketNotFoundError(
                status, endpoint=endpoint, detail="ticket unknown, malformed or expired"
            )
        # A proxy may put WeChat's JSON error behind a 4xx/5xx; prefer the typed error then.
        # JSON whose errcode is no number (a gateway's own) leaves the status as the answer.
        data = _maybe_json(body)
        if data is not None:
            with contextlib.suppress(ResponseDecodeError):
                _raise_for_errcode(data, endpoint)
        raise HTTPStatusError(status, endpoint=endpoint)

    stripped = body.lstrip(_WHITESPACE)
    if expect == "image":
        if stripped.startswith(b"{"):
            data = _parse_json(stripped, endpoint)
            _raise_for_errcode(data, endpoint)
            raise ResponseDecodeError("expected an image, got a JSON answer", endpoint=endpoint)
        kind = image_kind(body)
        if kind is None:
            raise ResponseDecodeError(_describe(body, content_type, "an image"), endpoint=endpoint)
        if "json" in content_type or "html" in content_type:
            raise ResponseDecodeError(
                f"image bytes labelled {content_type!r}; refusing an ambiguous answer",
                endpoint=endpoint,
            )
        return Image(body, kind=kind, num_used=_num_used(headers))

    if not stripped.startswith(b"{"):
        raise ResponseDecodeError(_describe(body, content_type, "JSON"), endpoint=endpoint)
    data = _parse_json(stripped, endpoint)
    _raise_for_errcode(data, endpoint)
    return data


def _maybe_json(body: bytes) -> dict[str, Any] | None:
    stripped = body.lstrip(_WHITESPACE)
    if not stripped.startswith(b"{"):
        return None
    try:
        data = loads(stripped)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    return data if isinstance(data, dict) else None


def _parse_json(body: bytes, endpoint: str) -> dict[str, Any]:
    try:
        data = loads(body)
    except (ValueError, RecursionError) as exc:  # also: nesting too deep for json.loads
        raise ResponseDecodeError(
            f"malformed JSON ({len(body)} bytes): {exc.__class__.__name__}", endpoint=endpoint
        ) from None
    # Unreachable while callers pass only bodies starting with "{" (kept for the type and as a
    # guard); so mutation testing leaves it alone.
    if not isinstance(data, dict):  # pragma: no mutate block
        raise ResponseDecodeError("JSON answer is not an object", endpoint=endpoint)
    return data


def _errcode(data: Mapping[str, Any], endpoint: str) -> int | None:
    errcode = data.get("errcode")
    if errcode is None:
        return None
    if isinstance(errcode, bool):
        raise ResponseDecodeError("errcode is a boolean", endpoint=endpoint)
    if isinstance(errcode, int):
        return errcode
    if isinstance(errcode, str):
        try:
            return int(errcode.strip())
        except ValueError:
            pass
    raise ResponseDecodeError(f"errcode is not a number: {errcode!r:.40}", endpoint=endpoint)


def _raise_for_errcode(data: Mapping[str, Any], endpoint: str) -> None:
    errcode = _errcode(data, endpoint)
    if errcode is None or errcode == 0:
        return
    errmsg = data.get("errmsg")
    raise error_for(errcode, errmsg if isinstance(errmsg, str) else "", endpoint=endpoint)


def _describe(body: bytes, content_type: str, wanted: str) -> str:
    label = content_type or "no content type"
    if not body:
        return f"expected {wanted}, got an empty body ({label})"
    head = body.lstrip(_WHITESPACE)[:15].lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or "html" in label:
        return f"expected {wanted}, got an HTML page ({len(body)} bytes, {label})"
    if body.startswith((_PNG_MAGIC, _JPEG_MAGIC, *_GIF_MAGICS)):
        kind = image_kind(body)
        if kind is not None:  # a complete image where JSON was due
            return f"expected {wanted}, got a {kind} image ({len(body)} bytes)"
        return f"expected {wanted}, got a truncated or incomplete image ({len(body)} bytes)"
    return f"expected {wanted}, got {len(body)} unrecognised bytes ({label})"
