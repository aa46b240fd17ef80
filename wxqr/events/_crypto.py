"""Safe / compatible mode: WeChat's AES-256-CBC message frame (reference/events.md §1.4).

``Encrypt = base64(AES-256-CBC(key, iv=key[:16], PKCS7_32(random16 + len4 + msg + appid)))``
with ``key = base64decode(EncodingAESKey + "=")`` (32 bytes). The padding block is **32** bytes,
not AES's 16: a generic unpadder rejects valid WeChat frames (the official inbound example ends
with a 19-byte pad), so padding is done here and checked strictly: the pad byte must be 1..32
and every pad byte equal, ``msg_len`` must fit, and the trailing appid must be ours.

The AES itself is ``cryptography``'s (the ``events`` extra), imported only when a
:class:`MessageCrypto` is built, so plaintext mode works without it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import struct
import time
from typing import Any, Final

from ..errors import ValidationError
from ._errors import AppIdMismatch, DecryptError, SignatureError
from ._models import Encrypted
from ._signature import sign

__all__ = ["MessageCrypto"]

BLOCK: Final = 32  # WeChat's PKCS#7 block size (not AES's 16)
_KEY_CHARS: Final = re.compile(r"[A-Za-z0-9]{43}")
_MISSING_EXTRA: Final = (
    "wxqr.events: safe and compatible modes need the 'events' extra: pip install 'wxqr[events]'"
)


def _cipher_class() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        raise ImportError(_MISSING_EXTRA) from None
    return Cipher, algorithms.AES, modes.CBC


def aes_key(encoding_aes_key: str, *, argument: str = "encoding_aes_key") -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey, or :class:`ValidationError`."""
    if not isinstance(encoding_aes_key, str) or not _KEY_CHARS.fullmatch(encoding_aes_key):
        # Never echo the key: it is a secret.
        raise ValidationError(argument, "must be 43 characters from A-Z, a-z, 0-9")
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:  # pragma: no cover - 43 base64 chars + "=" always give 32 bytes
        raise ValidationError(argument, "must decode to 32 bytes")
    return key


def _strings(**values: object) -> None:
    for name, value in values.items():
        if not isinstance(value, str):
            raise ValidationError(name, f"must be a str, got {type(value).__name__}")


class MessageCrypto:
    """Encrypt and decrypt WeChat's safe-mode frames for one account.

    Args:
        token: the Token of the server configuration page (signs ``msg_signature``).
        encoding_aes_key: the 43-character EncodingAESKey.
        appid: the account's AppID; every decrypted frame must end with it.

    Raises:
        ValidationError: the key is not 43 characters of ``[A-Za-z0-9]``, or token/appid empty.
        ImportError: ``cryptography`` (the ``events`` extra) is not installed.

    See https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/Technical_Plan.html
    """

    __slots__ = ("_appid", "_cipher", "_iv", "_key", "_token")

    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        if not isinstance(token, str) or not token:
            raise ValidationError("token", "must be a non-empty string")
        if not isinstance(appid, str) or not appid:
            raise ValidationError("appid", "must be a non-empty string (the account's AppID)")
        self._key = aes_key(encoding_aes_key)
        self._iv = self._key[:16]
        self._token = token
        self._appid = appid.encode("utf-8")
        self._cipher = _cipher_class()

    def __repr__(self) -> str:
        return f"MessageCrypto(appid={self._appid.decode()!r})"  # never the token or the key

    def _aes(self) -> Any:
        cipher, aes, cbc = self._cipher
        return cipher(aes(self._key), cbc(self._iv))

    def decrypt(self, encrypted: str, *, msg_signature: str, timestamp: str, nonce: str) -> str:
        """Check ``msg_signature`` and decrypt one ``Encrypt`` field; return the plaintext.

        Args:
            encrypted: the ``Encrypt`` field of the body (base64 text).
            msg_signature: the ``msg_signature`` query parameter (*not* ``signature``).
            timestamp: the ``timestamp`` query parameter.
            nonce: the ``nonce`` query parameter.

        Returns:
            the message (XML or JSON text).

        Raises:
            SignatureError: ``msg_signature`` does not sign ``encrypted`` (-40001).
            DecryptError: not base64 (-40010), not whole AES blocks (-40007), bad padding or
                ``msg_len`` (-40008).
            AppIdMismatch: the frame ends with another appid (-40005).
            ValidationError: an argument is not a ``str``.
        """
        _strings(encrypted=encrypted, msg_signature=msg_signature, timestamp=timestamp, nonce=nonce)
        expected = sign(self._token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), msg_signature.encode("utf-8", "replace")):
            raise SignatureError("msg_signature does not match the Encrypt field")
        try:
            ciphertext = base64.b64decode(encrypted.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise DecryptError("Encrypt is not base64", code=-40010) from None
        if not ciphertext or len(ciphertext) % BLOCK:
            raise DecryptError(f"ciphertext is not a whole number of {BLOCK}-byte blocks")
        decryptor = self._aes().decryptor()
        padded: bytes = decryptor.update(ciphertext) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= BLOCK or padded[-pad:] != bytes([pad]) * pad:
            raise DecryptError("bad PKCS#7 padding (wrong key?)", code=-40008)
        frame = padded[:-pad]
        if len(frame) < 20:
            raise DecryptError("frame shorter than its header", code=-40008)
        (msg_len,) = struct.unpack(">I", frame[16:20])
        if msg_len > len(frame) - 20:
            raise DecryptError("msg_len exceeds the frame", code=-40008)
        message, appid = frame[20 : 20 + msg_len], frame[20 + msg_len :]
        if not secrets.compare_digest(appid, self._appid):
            raise AppIdMismatch("the decrypted frame names another appid")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptError("message is not UTF-8", code=-40008) from None

    def encrypt(
        self,
        plaintext: str,
        *,
        nonce: str,
        timestamp: str | int | None = None,
        random_prefix: bytes | None = None,
    ) -> Encrypted:
        """Encrypt a reply and sign it.

        Args:
            plaintext: the reply message (XML or JSON text).
            nonce: the request's ``nonce`` (WeChat asks for it to be echoed).
            timestamp: the ``TimeStamp`` to sign; default: now.
            random_prefix: the frame's 16 random bytes; default ``secrets.token_bytes(16)``.
                Pass it only to reproduce a known ciphertext (test vectors).

        Returns:
            the :class:`Encrypted` fields of the reply.

        Raises:
            ValidationError: a non-``str`` plaintext or nonce, a timestamp that is not Unix
                seconds, or a ``random_prefix`` that is not 16 bytes.
        """
        _strings(plaintext=plaintext, nonce=nonce)
        if timestamp is not None and (
            isinstance(timestamp, bool) or not isinstance(timestamp, str | int)
        ):
            raise ValidationError("timestamp", "must be Unix seconds (int or decimal str) or None")
        if isinstance(timestamp, str) and not (timestamp.isascii() and timestamp.isdigit()):
            raise ValidationError("timestamp", "must be a decimal string of Unix seconds")
        if random_prefix is None:
            random_prefix = secrets.token_bytes(16)
        elif not isinstance(random_prefix, bytes) or len(random_prefix) != 16:
            raise ValidationError("random_prefix", "must be exactly 16 bytes")
        message = plaintext.encode("utf-8")
        frame = random_prefix + struct.pack(">I", len(message)) + message + self._appid
        pad = BLOCK - len(frame) % BLOCK
        encryptor = self._aes().encryptor()
        ciphertext = encryptor.update(frame + bytes([pad]) * pad) + encryptor.finalize()
        encrypt = base64.b64encode(ciphertext).decode("ascii")
        stamp = str(int(time.time()) if timestamp is None else int(timestamp))
        return Encrypted(encrypt, sign(self._token, stamp, nonce, encrypt), stamp, nonce)
