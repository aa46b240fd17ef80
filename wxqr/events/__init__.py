"""``wxqr.events``: hear the codes being scanned (WeChat's server push, reference/events.md).

When a user scans a parametric QR code, WeChat pushes a ``subscribe`` event (the user followed;
``EventKey = "qrscene_" + scene``) or a ``SCAN`` event (already a follower) to the account's
server URL. :class:`Receiver` is the receiving side, framework-neutral::

    receiver = events.Receiver(token, encoding_aes_key=key, appid=appid)

    @receiver.on_scan
    async def scanned(scan: events.QrScan) -> str | None:
        ...                                   # a str is sent back as a passive text reply

    app.mount("/wechat", receiver.asgi_app)   # or receiver.aiohttp_handler, or receiver.handle

The pure pieces work alone: :func:`check_signature`, :class:`MessageCrypto` (AES-256-CBC safe
mode; the ``events`` extra installs ``cryptography``) and :func:`parse`. De-duplication of
WeChat's resends: :class:`MemoryDedup` (per process) or :class:`RedisDedup` (a cluster).
"""

from __future__ import annotations

from ._crypto import MessageCrypto
from ._dedup import MIN_TTL, Dedup, MemoryDedup, RedisDedup
from ._errors import (
    AppIdMismatch,
    DecryptError,
    DedupError,
    MalformedMessage,
    ReceiveError,
    SignatureError,
)
from ._models import Answer, Encrypted, Event, QrScan
from ._parse import parse
from ._receiver import EventHandler, Receiver, ScanHandler, dedup_key
from ._signature import check_signature

__all__ = [
    "MIN_TTL",
    "Answer",
    "AppIdMismatch",
    "DecryptError",
    "Dedup",
    "DedupError",
    "Encrypted",
    "Event",
    "EventHandler",
    "MalformedMessage",
    "MemoryDedup",
    "MessageCrypto",
    "QrScan",
    "ReceiveError",
    "Receiver",
    "RedisDedup",
    "ScanHandler",
    "SignatureError",
    "check_signature",
    "dedup_key",
    "parse",
]
