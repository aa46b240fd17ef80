"""The receiving side's frozen models: what a push turns into, and what a receiver answers."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ..errors import WxqrError

__all__ = ["Answer", "Encrypted", "Event", "QrScan"]


@attrs.frozen
class QrScan:
    """A parametric QR code was scanned (``subscribe`` with a scene, or ``SCAN``).

    Attributes:
        openid: the scanner's OpenID (``FromUserName``).
        scene: the code's scene, always a string (``scene_id`` codes give ``"123"``); the
            ``qrscene_`` prefix WeChat adds on ``subscribe`` is stripped.
        ticket: the code's ticket (``Ticket``), ``None`` if the push had none.
        new_follower: ``True`` for ``subscribe`` (the user followed by scanning), ``False`` for
            ``SCAN`` (already a follower).
        create_time: ``CreateTime``, Unix seconds.
        account: ``ToUserName``, the account's original id (``gh_...``).
        raw: every field of the push as received.
    """

    openid: str
    scene: str
    ticket: str | None
    new_follower: bool
    create_time: int
    account: str
    raw: Mapping[str, str] = attrs.field(repr=False, hash=False)


@attrs.frozen
class Event:
    """Any other push: an event (``unsubscribe``, a plain follow, ...) or a message.

    Attributes:
        name: the ``Event`` of an event push (as sent: ``subscribe``, ``unsubscribe``,
            ``LOCATION``...), or the ``MsgType`` of a message (``text``, ``image``...).
        openid: ``FromUserName``.
        create_time: ``CreateTime``, Unix seconds.
        account: ``ToUserName``.
        raw: every field of the push as received.
    """

    name: str
    openid: str
    create_time: int
    account: str
    raw: Mapping[str, str] = attrs.field(repr=False, hash=False)


@attrs.frozen
class Answer:
    """What a :class:`~wxqr.events.Receiver` answers to one request (framework-neutral).

    Attributes:
        status: the HTTP status.
        content_type: the ``Content-Type`` header.
        body: the response body.
        error: for a refusal, the typed error behind it (never sent to the client: the body
            does not say which check failed); ``None`` otherwise.
    """

    status: int
    content_type: str
    body: bytes
    error: WxqrError | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class Encrypted:
    """An encrypted reply, as :meth:`MessageCrypto.encrypt` builds it (reference §1.4).

    Attributes:
        encrypt: the base64 ``Encrypt`` field.
        msg_signature: ``sha1(sort([token, timestamp, nonce, encrypt]))``, lowercase hex.
        timestamp: the ``TimeStamp`` signed (Unix seconds, as a decimal string).
        nonce: the ``Nonce`` signed (the request's nonce, echoed).
    """

    encrypt: str
    msg_signature: str
    timestamp: str
    nonce: str
