"""Short-key hosting: ``cgi-bin/shorten/gen`` and ``cgi-bin/shorten/fetch``."""

from __future__ import annotations

from typing import Final

from .. import _validate as v
from .._converter import structure
from .._transport import Endpoint
from ..errors import ResponseDecodeError
from ..models import ShortenData
from ._base import Resource

__all__ = ["Shorten"]

# Every gen creates a new key: never resent once the request may have reached WeChat.
GEN: Final = Endpoint("cgi-bin/shorten/gen", idempotent=False)
FETCH: Final = Endpoint("cgi-bin/shorten/fetch")


class Shorten(Resource):
    """Turn long data (≤ 4 KB) into a 15-character key and back (``client.shorten``).

    Docs: https://developers.weixin.qq.com/doc/service/api/qrcode/shorten/api_genshortkey
    """

    __slots__ = ()

    async def gen(
        self,
        long_data: str,
        *,
        expire_seconds: int = v.EXPIRE_SECONDS_MAX,
        timeout: float | None = None,
    ) -> str:
        """Store ``long_data`` and return its short key (``genShortKey``).

        The field is ``long_data`` as in the official docs (one seed called it ``long_url``).
        Not retried automatically once the request may have reached WeChat.

        Args:
            long_data: up to 4096 bytes of UTF-8.
            expire_seconds: 1..2592000 (default: 30 days, WeChat's default).

        Returns:
            The short key.
        """
        v.text("long_data", long_data, max_len=v.LONG_DATA_MAX_BYTES, unit="bytes")
        v.expire_seconds(expire_seconds)
        data = await self._transport.call(
            GEN, json={"long_data": long_data, "expire_seconds": expire_seconds}, timeout=timeout
        )
        key = data.get("short_key")
        if not isinstance(key, str) or not key:
            raise ResponseDecodeError("answer has no short_key", endpoint=GEN.path)
        return key

    async def fetch(self, short_key: str, *, timeout: float | None = None) -> ShortenData:
        """Return the data behind a short key (``fetchShorten``).

        Raises:
            InvalidRequestError: 9410012 — the key does not exist, expired or is another
                account's.

        Docs: https://developers.weixin.qq.com/doc/service/api/qrcode/shorten/api_fetchshorten
        """
        v.short_key(short_key)
        data = await self._transport.call(FETCH, json={"short_key": short_key}, timeout=timeout)
        return structure(data, ShortenData, endpoint=FETCH.path)
