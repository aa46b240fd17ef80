"""Strings that hold an AppSecret or an access token, and never show it in a ``repr``.

Tracebacks rendered with ``capture_locals=True`` (Sentry, ``traceback.TracebackException``,
pytest's ``--showlocals``) print the ``repr`` of every local of every frame on the way; so do
debuggers and ``f"{x!r}"``. Holding the secret and the tokens in these ``str`` subclasses keeps
them usable everywhere a ``str`` is (JSON bodies, URLs, aiohttp, httpx) while their ``repr`` -- and
the ``repr`` of every dict, tuple or attrs object that contains them -- is masked.

``str(masked)`` and f-strings without ``!r`` still give the plain value: that is how it is sent.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["Masked", "MaskedURL", "redact"]

_SECRET_IN_URL: Final = re.compile(
    r"((?:access_token|secret|appsecret)=)[^&\s\"'>]+", re.IGNORECASE
)


def redact(text: str) -> str:
    """Mask ``access_token=`` / ``secret=`` values in a URL or message."""
    return _SECRET_IN_URL.sub(r"\1***", text)


class Masked(str):
    """An AppSecret or access token: a ``str`` whose ``repr`` is ``'***'`` (and its last 4)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***" + (self[-4:] if len(self) > 12 else "") + "'"


class MaskedURL(str):
    """A URL carrying ``?access_token=`` or ``?secret=``: its ``repr`` redacts the query."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(redact(str(self)))
