"""The sandbox's tiny HTTP vocabulary: a parsed request, a response, and WeChat's error envelope."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import CATALOGUE

if TYPE_CHECKING:
    from ._state import Account, SandboxState

__all__ = [
    "JSON_CONTENT_TYPE",
    "ASGIApp",
    "Call",
    "Reject",
    "Request",
    "Response",
    "catalogue_errmsg",
    "html_response",
    "json_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: What WeChat labels its JSON answers with (sic: ``encoding``, not ``charset``).
JSON_CONTENT_TYPE = "application/json; encoding=utf-8"


@attrs.frozen
class Request:
    """A request as the handlers see it."""

    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    body: bytes
    client: str | None


@attrs.define
class Response:
    """An answer: status, headers and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    #: the errcode of a JSON error answer (for the request log and the rid store)
    errcode: int | None = None

    @property
    def content_type(self) -> str:
        """The Content-Type header ('' when absent)."""
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value
        return ""

    def set_content_type(self, value: str) -> None:
        """Replace the Content-Type header."""
        self.headers = [(n, v) for n, v in self.headers if n.lower() != "content-type"]
        self.headers.append(("Content-Type", value))


class Reject(Exception):
    """Raised by a handler to answer WeChat's error envelope with ``errcode``.

    Args:
        errcode: the errcode.
        errmsg: the text before `` rid: ...``; defaults to the catalogue's errmsg.
    """

    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg if errmsg is not None else catalogue_errmsg(errcode)
        #: extra headers for the error answer (``Num-Used`` on getwxacode)
        self.headers: list[tuple[str, str]] = []


def catalogue_errmsg(errcode: int) -> str:
    """The English errmsg WeChat returns for ``errcode`` (from ``wxqr.errors.CATALOGUE``)."""
    entry = CATALOGUE.get(errcode)
    return entry.errmsg if entry else "unknown error"


def json_response(
    data: dict[str, Any], *, status: int = 200, errcode: int | None = None
) -> Response:
    """A JSON answer labelled the way WeChat labels it."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, [("Content-Type", JSON_CONTENT_TYPE)], body, errcode)


def html_response(html: str, *, status: int = 200) -> Response:
    """A ``text/html`` answer."""
    return Response(status, [("Content-Type", "text/html; charset=utf-8")], html.encode())


def parse_json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or ``None`` when it is not one."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@attrs.define
class Call:
    """One request being handled: the state, the request, and what routing learnt about it.

    Attributes:
        state: the :class:`~wxqr.sandbox.SandboxState`.
        request: the parsed request.
        endpoint: the path without its leading slash.
        now: the virtual time the request is handled at.
        account: the account the token (or credentials) belong to, once known.
        body: the JSON body (``{}`` for endpoints that take none).
    """

    state: SandboxState
    request: Request
    endpoint: str
    now: float
    account: Account | None = None
    body: dict[str, Any] = attrs.field(factory=dict)


def as_int(value: object) -> int | None:
    """``value`` as an int when WeChat would accept it as one (int or numeric string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def as_bool(value: object, default: bool) -> bool | None:
    """``value`` as a bool (bools, 0/1, ``"true"``/``"false"``); ``None`` when it is not one."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "0", "1"):
        return value.lower() in ("true", "1")
    return None
