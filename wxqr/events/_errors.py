"""The typed refusals of the receiving side, each carrying the official sample's -400xx code.

::

    WxqrError
    └── ReceiveError               (a push was refused; ``.code`` and ``.status``)
        ├── SignatureError         (-40001: bad ``signature`` / ``msg_signature``, stale timestamp)
        ├── MalformedMessage       (-40002: not XML/JSON, DOCTYPE/ENTITY, missing fields, too big)
        ├── AppIdMismatch          (-40005: the decrypted frame names another appid)
        └── DecryptError           (-40007 AES failed / -40008 bad padding or length /
                                    -40010 bad base64 / -40004 no or bad EncodingAESKey)

The codes are those of WeChat's ``WXBizMsgCrypt`` sample (``ierror.py``, reference/events.md
§1.5). Messages name the check that failed but never the Token, the EncodingAESKey or the
ciphertext; the HTTP answer a receiver sends for them never says which check failed.
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import WxqrError

__all__ = [
    "AppIdMismatch",
    "DecryptError",
    "DedupError",
    "MalformedMessage",
    "ReceiveError",
    "SignatureError",
]


class ReceiveError(WxqrError):
    """A pushed request was refused (base class of the receiving side's errors).

    Attributes:
        code: the official sample's error code (``-40001`` ...).
        status: the HTTP status a :class:`~wxqr.events.Receiver` answers for it.
    """

    default_code: ClassVar[int] = -40000
    default_status: ClassVar[int] = 400

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None) -> None:
        self.code = self.default_code if code is None else code
        self.status = self.default_status if status is None else status
        super().__init__(f"{message} (code {self.code})")


class SignatureError(ReceiveError):
    """``signature`` or ``msg_signature`` is missing or wrong, or the timestamp is stale (-40001).

    Answered with HTTP 403.
    """

    default_code = -40001
    default_status = 403


class MalformedMessage(ReceiveError):
    """The body is not a WeChat push: malformed XML/JSON, a DOCTYPE/ENTITY declaration, a
    missing field, or larger than ``max_body`` (-40002). Answered with HTTP 400 (413 if too big).
    """

    default_code = -40002
    default_status = 400


class AppIdMismatch(ReceiveError):
    """The decrypted frame ends with another appid than the receiver's (-40005); HTTP 400."""

    default_code = -40005
    default_status = 400


class DecryptError(ReceiveError):
    """The ``Encrypt`` field could not be decrypted (-40007), its plaintext frame is malformed
    (bad PKCS#7 padding or ``msg_len``: -40008), it is not base64 (-40010), or no usable
    EncodingAESKey is configured (-40004). Answered with HTTP 400.
    """

    default_code = -40007
    default_status = 400


class DedupError(WxqrError):
    """The de-duplication store (e.g. Redis) failed or timed out.

    A :class:`~wxqr.events.Receiver` logs it and runs the handler anyway (a scan is worth more
    than a duplicate), so user code only sees it when calling a dedup store directly.
    """
