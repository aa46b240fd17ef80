"""Argument checks for every documented limit, run before any network I/O.

Each check raises :class:`wxqr.ValidationError` naming the argument and the allowed range.
The limits come from reference/wechat-api.md (section in brackets).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from .errors import ValidationError

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
PERMANENT_SCENE_ID_MAX: Final = 100_000  # [§3.1]
SCENE_STR_MAX: Final = 64  # [§3.1]
EXPIRE_SECONDS_MAX: Final = 2_592_000  # 30 days [§3.1, §4.1]
LONG_DATA_MAX_BYTES: Final = 4096  # "≤ 4 KB" [§4.1]
DEBUG_URL_MAX: Final = 5  # [§5.1]
WIDTH_MIN: Final = 280  # [§6.1]
WIDTH_MAX: Final = 1280
C_PATH_MAX_BYTES: Final = 128  # createwxaqrcode path [§6.1]
A_PATH_MAX_CHARS: Final = 1024  # getwxacode path [§6.1]
UNLIMITED_SCENE_MAX: Final = 32  # [§6.1]
ENV_VERSIONS: Final = ("release", "trial", "develop")
_SCENE_CHARS: Final = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]*")
_SHORT_KEY: Final = re.compile(r"[0-9A-Za-z]+")


def int_in(name: str, value: Any, low: int, high: int) -> int:
    """An ``int`` (not ``bool``) within ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, f"must be an integer in {low}..{high}, got {value!r:.40}")
    if not low <= value <= high:
        raise ValidationError(name, f"must be in {low}..{high}, got {value}")
    return value


def one_of(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """One of ``allowed``."""
    if isinstance(value, bool) or value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValidationError(name, f"must be one of {choices}, got {value!r:.40}")
    return value


def boolean(name: str, value: Any) -> bool:
    """A real ``bool``: ``0``/``"false"`` are refused rather than guessed at."""
    if not isinstance(value, bool):
        raise ValidationError(name, f"must be True or False, got {value!r:.40}")
    return value


def utf8(name: str, value: str) -> bytes:
    """The UTF-8 bytes of ``value``; a lone surrogate (``"\\ud800"``) cannot be sent."""
    try:
        return value.encode()
    except UnicodeEncodeError as exc:
        raise ValidationError(
            name,
            f"must be valid Unicode text: a lone surrogate {value[exc.start]!r} at index "
            f"{exc.start} cannot be encoded as UTF-8",
        ) from None


def text(name: str, value: Any, *, min_len: int = 1, max_len: int, unit: str = "chars") -> str:
    """A ``str`` of ``min_len..max_len`` characters (or UTF-8 bytes when ``unit="bytes"``),
    encodable as UTF-8."""
    if not isinstance(value, str):
        raise ValidationError(name, f"must be a string, got {type(value).__name__}")
    encoded = utf8(name, value)
    size = len(encoded) if unit == "bytes" else len(value)
    if not min_len <= size <= max_len:
        raise ValidationError(name, f"must be {min_len}..{max_len} {unit} long, got {size} {unit}")
    return value


def timeout(value: Any, name: str = "timeout") -> float:
    """Seconds: a finite number > 0 (``0``, negatives, NaN and infinity are refused)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not value > 0
    ):
        raise ValidationError(name, f"must be a finite number of seconds > 0, got {value!r:.40}")
    return float(value)


def exactly_one_scene(scene_id: Any, scene_str: Any) -> None:
    """Exactly one of ``scene_id`` / ``scene_str``."""
    if (scene_id is None) == (scene_str is None):
        raise ValidationError(
            "scene_id/scene_str", "pass exactly one of scene_id (int) or scene_str (str)"
        )


def temporary_scene_id(value: Any) -> int:
    """Temporary codes: a non-zero 32-bit integer [§3.1]."""
    int_in("scene_id", value, INT32_MIN, INT32_MAX)
    if value == 0:
        raise ValidationError(
            "scene_id", f"must be a non-zero 32-bit integer ({INT32_MIN}..{INT32_MAX}, not 0)"
        )
    return int(value)


def permanent_scene_id(value: Any) -> int:
    """Permanent codes: 1..100000 [§3.1]."""
    return int_in("scene_id", value, 1, PERMANENT_SCENE_ID_MAX)


def scene_str(value: Any) -> str:
    """1..64 characters [§3.1]."""
    return text("scene_str", value, max_len=SCENE_STR_MAX)


def expire_seconds(value: Any) -> int:
    """1..2592000 seconds [§3.1, §4.1]."""
    return int_in("expire_seconds", value, 1, EXPIRE_SECONDS_MAX)


def width(value: Any) -> int:
    """280..1280 px [§6.1]."""
    return int_in("width", value, WIDTH_MIN, WIDTH_MAX)


def env_version(value: Any) -> str:
    """``release``, ``trial`` or ``develop`` [§6.1]."""
    return str(one_of("env_version", value, ENV_VERSIONS))


def line_color(value: Any) -> dict[str, int]:
    """``(r, g, b)`` or ``{"r":..,"g":..,"b":..}``, each 0..255 [§6.1]."""
    if isinstance(value, dict):
        if set(value) != {"r", "g", "b"}:
            raise ValidationError("line_color", "must have exactly the keys 'r', 'g', 'b'")
        parts = [value["r"], value["g"], value["b"]]
    elif isinstance(value, tuple | list) and len(value) == 3:
        parts = list(value)
    else:
        raise ValidationError("line_color", "must be an (r, g, b) tuple of integers 0..255")
    r, g, b = (int_in(f"line_color.{c}", p, 0, 255) for c, p in zip("rgb", parts, strict=True))
    return {"r": r, "g": g, "b": b}


def no_scancode_time(name: str, value: str) -> None:
    """``scancode_time`` is reserved by WeChat (errcode 85096) [§6.3]."""
    if "scancode_time" in value:
        raise ValidationError(name, "must not contain 'scancode_time' (reserved by WeChat)")


def unlimited_scene(value: Any) -> str:
    """getUnlimited scene: 1..32 chars from ``0-9 a-z A-Z !#$&'()*+,/:;=?@-._~`` [§6.1]."""
    text("scene", value, max_len=UNLIMITED_SCENE_MAX)
    if not _SCENE_CHARS.fullmatch(value):
        bad = sorted({c for c in value if not _SCENE_CHARS.fullmatch(c)})
        raise ValidationError(
            "scene",
            "may only contain 0-9 a-z A-Z and !#$&'()*+,/:;=?@-._~ "
            f"(no '%', spaces or non-ASCII), found {''.join(bad)!r}",
        )
    return str(value)


def page(value: Any) -> str:
    """getUnlimited page: no leading ``/``, no query [§6.1]."""
    text("page", value, max_len=A_PATH_MAX_CHARS)
    if value.startswith("/"):
        raise ValidationError("page", "must not start with '/' (e.g. 'pages/index/index')")
    if "?" in value:
        raise ValidationError("page", "must not contain a query ('?'); put parameters in scene")
    return str(value)


def debug_urls(value: Any) -> list[str]:
    """At most 5 test links, each a non-empty string [§5.1]."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError("debug_url", "must be a list of URLs")
    if len(value) > DEBUG_URL_MAX:
        raise ValidationError("debug_url", f"at most {DEBUG_URL_MAX} URLs, got {len(value)}")
    for item in value:
        text("debug_url", item, max_len=2048)
    return list(value)


def http_url(name: str, value: Any) -> str:
    """An ``http://`` or ``https://`` link."""
    text(name, value, max_len=2048)
    if not value.startswith(("http://", "https://")) or not _has_host(value):
        raise ValidationError(name, f"must be an http:// or https:// URL, got {value!r:.60}")
    return str(value)


def _has_host(url: str) -> bool:
    # WeChat refuses a prefix without a host ("http://") with 85066.
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:  # e.g. an unclosed "[" IPv6 literal
        return False


def short_key(value: Any) -> str:
    """A base62 short key (WeChat issues 15 characters) [§4.1]."""
    text("short_key", value, max_len=64)
    if not _SHORT_KEY.fullmatch(value):
        raise ValidationError("short_key", "must be base62 (0-9 a-z A-Z)")
    return str(value)


# -- Mini Program links (reference/links.md) ---------------------------------------------------
LINK_QUERY_MAX: Final = 1024  # jump_wxa.query / query / page_url [links §2, §5, §7]
LINK_PATH_MAX: Final = 1024  # not documented; wxqr's bound, as for getwxacode's path
LINK_EXPIRE_MIN_SECONDS: Final = 60  # 85401: "between 1min and 30days" [links §2]
LINK_EXPIRE_MAX_SECONDS: Final = 30 * 86400
LINK_EXPIRE_DAYS_MAX: Final = 30  # expire_interval 1..30 [links §2, §8]
#: A Unix time in seconds stays below this until the year 5138; milliseconds are above it.
UNIX_SECONDS_MAX: Final = 10**11
_LINK_QUERY_CHARS: Final = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~%]*")


def link_query(name: str, value: Any) -> str:
    """A link query: ≤ 1024 chars of ``0-9 a-z A-Z !#$&'()*+,/:;=?@-._~%`` [links §2]."""
    text(name, value, min_len=0, max_len=LINK_QUERY_MAX)
    if not _LINK_QUERY_CHARS.fullmatch(value):
        bad = sorted({c for c in value if not _LINK_QUERY_CHARS.fullmatch(c)})
        raise ValidationError(
            name,
            "may only contain 0-9 a-z A-Z and !#$&'()*+,/:;=?@-._~% (url-encode anything "
            f"else), found {''.join(bad)!r}",
        )
    return str(value)


def link_path(value: Any) -> str:
    """A scheme / URL Link page: no query (pass it as ``query``); ``""`` = home page."""
    text("path", value, min_len=0, max_len=LINK_PATH_MAX)
    if "?" in value:
        raise ValidationError("path", "must not contain a query ('?'); pass it as query=")
    if any(c.isspace() for c in value):
        raise ValidationError("path", "must not contain whitespace")
    return str(value)


def page_url(value: Any) -> str:
    """A Short Link page: ``pages/x/x`` with an optional ``?query``, ≤ 1024 chars [links §7]."""
    text("page_url", value, max_len=LINK_QUERY_MAX)
    page, _, query = value.partition("?")
    if not page or any(c.isspace() for c in page):
        raise ValidationError(
            "page_url", "must start with a page path without whitespace (e.g. 'pages/a/a?x=1')"
        )
    link_query("page_url", query)
    return str(value)


def link_expiry(expires_at: Any, expires_in_days: Any, now: float) -> dict[str, int]:
    """The ``expire_type`` fields for exactly one of ``expires_at`` / ``expires_in_days``.

    ``expires_at`` (a timezone-aware ``datetime`` or integer Unix *seconds*, 60 s .. 30 days
    after ``now``) → ``expire_type=0, expire_time``; ``expires_in_days`` (1..30) →
    ``expire_type=1, expire_interval``; neither → ``{}`` (WeChat's default: 30 days).
    """
    if expires_at is not None and expires_in_days is not None:
        raise ValidationError(
            "expires_at/expires_in_days", "pass at most one of expires_at or expires_in_days"
        )
    if expires_in_days is not None:
        days = int_in("expires_in_days", expires_in_days, 1, LINK_EXPIRE_DAYS_MAX)
        return {"expire_type": 1, "expire_interval": days}
    if expires_at is None:
        return {}
    if isinstance(expires_at, datetime):
        if expires_at.utcoffset() is None:
            raise ValidationError(
                "expires_at", "a datetime must be timezone-aware (e.g. tzinfo=timezone.utc)"
            )
        seconds = math.floor(expires_at.timestamp())
    elif isinstance(expires_at, int) and not isinstance(expires_at, bool):
        if expires_at >= UNIX_SECONDS_MAX:
            raise ValidationError(
                "expires_at",
                f"must be Unix time in seconds; {expires_at} looks like milliseconds",
            )
        seconds = expires_at
    else:
        raise ValidationError(
            "expires_at",
            f"must be a datetime or integer Unix seconds, got {type(expires_at).__name__}",
        )
    ahead = seconds - now
    if not LINK_EXPIRE_MIN_SECONDS <= ahead <= LINK_EXPIRE_MAX_SECONDS:
        raise ValidationError(
            "expires_at",
            f"must be 60 s .. 30 days ({LINK_EXPIRE_MAX_SECONDS} s) from now, got {ahead:+.0f} s",
        )
    return {"expire_type": 0, "expire_time": int(seconds)}
