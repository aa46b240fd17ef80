"""Pure parsing of a push body (XML, or the JSON a Mini Program can be set to).

XML goes through the standard library's ``xml.etree`` after a refusal of any ``<!`` markup that
is not CDATA: WeChat never sends a DOCTYPE, and refusing it *before* parsing means no entity is
ever declared, so none can be expanded (billion laughs) or fetched (XXE). Bodies are small
(``max_body`` caps them upstream) and flat: ``<xml><Field>value</Field>...</xml>``; nested
elements (e.g. ``ScanCodeInfo``) appear in ``raw`` as ``Parent/Child`` keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final
from xml.etree import ElementTree

from ..errors import ValidationError
from ._errors import MalformedMessage
from ._models import Event, QrScan

__all__ = ["parse", "parse_fields", "to_event"]

# "<!" that does not open a CDATA section: DOCTYPE, ENTITY, ELEMENT, ATTLIST, comments too.
_DECLARATION: Final = re.compile(rb"<!(?!\[CDATA\[)")
_SCENE_PREFIX: Final = "qrscene_"
_MAX_DEPTH: Final = 4


def _xml_fields(body: bytes) -> dict[str, str]:
    if _DECLARATION.search(body):
        raise MalformedMessage("XML with a DOCTYPE, ENTITY or other declaration is refused")
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, LookupError, ValueError):
        # ValueError / LookupError: an XML declaration naming a multi-byte or unknown encoding.
        raise MalformedMessage("the body is not well-formed XML") from None
    fields: dict[str, str] = {}

    def walk(element: ElementTree.Element, prefix: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise MalformedMessage("XML nested too deeply")
        for child in element:
            name = prefix + child.tag
            if len(child):
                walk(child, name + "/", depth + 1)
            else:
                fields.setdefault(name, child.text or "")

    walk(root, "", 1)
    return fields


def _json_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _json_fields(body: bytes) -> dict[str, str]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedMessage("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise MalformedMessage("the JSON body is not an object")
    return {str(key): _json_value(value) for key, value in data.items()}


def parse_fields(body: bytes | str) -> tuple[dict[str, str], str]:
    """The top-level fields of a push body and its format (``"xml"`` or ``"json"``).

    Raises:
        MalformedMessage: neither well-formed XML nor a JSON object, or a DOCTYPE/ENTITY.
        ValidationError: ``body`` is neither bytes nor str.
    """
    if isinstance(body, str):
        data = body.encode("utf-8")
    elif isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
    else:  # bytes(5) would be five zero bytes: refuse what is not a body
        raise ValidationError("body", f"must be bytes or str, got {type(body).__name__}")
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        return _json_fields(stripped), "json"
    if stripped.startswith(b"<"):
        return _xml_fields(stripped), "xml"
    raise MalformedMessage("the body is neither XML nor JSON")


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise MalformedMessage(f"the push has no {name}")
    return value


def to_event(fields: Mapping[str, str]) -> QrScan | Event:
    """Turn a push's fields into a :class:`QrScan` or an :class:`Event` (see :func:`parse`)."""
    raw: Mapping[str, str] = MappingProxyType(dict(fields))  # read-only, shared by handlers
    openid = _required(raw, "FromUserName")
    account = _required(raw, "ToUserName")
    msg_type = _required(raw, "MsgType")
    try:
        create_time = int(_required(raw, "CreateTime"))
    except ValueError:
        raise MalformedMessage("CreateTime is not an integer") from None
    if msg_type.lower() != "event":
        return Event(msg_type, openid, create_time, account, raw)
    name = _required(raw, "Event")
    key = raw.get("EventKey", "").strip()
    ticket = raw.get("Ticket", "").strip() or None
    if name.lower() == "subscribe" and key.startswith(_SCENE_PREFIX) and len(key) > 8:
        return QrScan(openid, key[len(_SCENE_PREFIX) :], ticket, True, create_time, account, raw)
    if name.lower() == "scan" and key:
        return QrScan(openid, key, ticket, False, create_time, account, raw)
    return Event(name, openid, create_time, account, raw)


def parse(body: bytes | str) -> QrScan | Event:
    """Parse a plaintext push body into a :class:`QrScan` or an :class:`Event`.

    A ``subscribe`` whose ``EventKey`` starts with ``qrscene_`` (a follow by scanning) and a
    ``SCAN`` (a follower scanned) are a :class:`QrScan`; a plain follow (no or empty
    ``EventKey``, ``last_trade_no_...``, ``scanbarcode|...``) and everything else is an
    :class:`Event`. The body is XML (Official Accounts) or JSON (a Mini Program set to JSON);
    an encrypted body's fields are decrypted by :class:`~wxqr.events.Receiver` first.

    Args:
        body: the request body.

    Returns:
        the :class:`QrScan` or :class:`Event`.

    Raises:
        MalformedMessage: malformed XML/JSON, a DOCTYPE/ENTITY declaration, or a missing
            ``ToUserName``/``FromUserName``/``CreateTime``/``MsgType``/``Event``.
        ValidationError: ``body`` is neither bytes nor str.

    See https://developers.weixin.qq.com/doc/service/guide/product/message/Receiving_event_pushes.html
    """
    fields, _ = parse_fields(body)
    return to_event(fields)
