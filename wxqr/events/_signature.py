"""WeChat's push signatures: ``sha1`` over the lexicographically sorted parts (reference §1.1)."""

from __future__ import annotations

import hashlib
import hmac

from ..errors import ValidationError

__all__ = ["check_signature", "sign"]


def sign(*parts: str) -> str:
    """``sha1(concat(sorted(parts)))`` as lowercase hex: WeChat's ``signature`` and
    ``msg_signature`` (string sort, as the official PHP sample's ``SORT_STRING``)."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(token: str, *, timestamp: str, nonce: str, signature: str) -> bool:
    """Whether ``signature`` is WeChat's signature of ``timestamp`` and ``nonce`` under ``token``.

    The comparison is constant-time (:func:`hmac.compare_digest`). This is the check of the URL
    verification GET and of every POST, in all three modes; the ``msg_signature`` of an
    encrypted push is checked by :meth:`MessageCrypto.decrypt`.

    Args:
        token: the Token of the server configuration page.
        timestamp: the ``timestamp`` query parameter.
        nonce: the ``nonce`` query parameter.
        signature: the ``signature`` query parameter.

    Returns:
        ``True`` when the signature matches (``False`` for a non-``str`` part).

    Raises:
        ValidationError: ``token`` is not a non-empty string.

    See https://developers.weixin.qq.com/miniprogram/dev/framework/server-ability/message-push.html
    """
    if not isinstance(token, str) or not token:
        raise ValidationError("token", "must be a non-empty string (the push Token)")
    if not all(isinstance(part, str) for part in (timestamp, nonce, signature)):
        return False  # e.g. a framework's list of repeated query values: never a match
    expected = sign(token, timestamp, nonce)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))
