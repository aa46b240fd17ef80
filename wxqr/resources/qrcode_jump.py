"""Rules that make ordinary link QR codes open a Mini Program: ``cgi-bin/wxopen/qrcodejump*``.

Two rule families share the endpoints (reference §5): a Mini Program's own *ordinary link rules*
(``permit_sub_rule``, ``open_version``, ``debug_url``; call with the Mini Program's client) and a
*service account's QR rules* (``appid`` of the target Mini Program, prefix
``http://weixin.qq.com/q/...``; call with the service account's client).
All share WeChat's 5 requests/second limit (44990), enforced client-side by the
``"qrcodejump"`` rate limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .. import _validate as v
from .._converter import structure
from .._transport import Endpoint
from ..errors import ValidationError
from ..models import QrJumpFile, QrJumpRules
from ._base import Resource

__all__ = ["QrCodeJump"]

ADD: Final = Endpoint("cgi-bin/wxopen/qrcodejumpadd", rate_bucket="qrcodejump")
GET: Final = Endpoint("cgi-bin/wxopen/qrcodejumpget", rate_bucket="qrcodejump")
DELETE: Final = Endpoint("cgi-bin/wxopen/qrcodejumpdelete", rate_bucket="qrcodejump")
# Publishing spends a monthly quota (100/month): never resent once it may have reached WeChat.
PUBLISH: Final = Endpoint(
    "cgi-bin/wxopen/qrcodejumppublish", rate_bucket="qrcodejump", idempotent=False
)
DOWNLOAD: Final = Endpoint("cgi-bin/wxopen/qrcodejumpdownload", rate_bucket="qrcodejump")

SERVICE_PREFIX: Final = "http://weixin.qq.com/q/"
PREFIX_LIST_MAX: Final = 200
PAGE_SIZE_MAX: Final = 200


class QrCodeJump(Resource):
    """Jump rules (``client.qrcode_jump``).

    Docs: https://developers.weixin.qq.com/doc/service/api/qrcode/qrcodejump/api_qrcodejumpadd
    """

    __slots__ = ()

    async def add(
        self,
        *,
        prefix: str,
        path: str,
        open_version: int | None = None,
        permit_sub_rule: int | None = None,
        debug_url: Sequence[str] = (),
        is_edit: bool = False,
        appid: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Add (or with ``is_edit=True`` modify) a rule (``qrcodeJumpAdd``).

        Ordinary link rule: pass ``open_version`` (1 develop, 2 trial, 3 release) and
        ``permit_sub_rule`` (1 don't occupy sub-rules, 2 occupy), optionally up to 5
        ``debug_url``. Service-account rule: pass ``appid`` (the Mini Program) and a prefix
        starting with ``http://weixin.qq.com/q/``; the other three are not allowed then.

        Raises:
            ValidationError: missing/extra fields for the rule family, > 5 debug URLs, ...
            InvalidRequestError: 85066 bad prefix, 85068 debug_url outside the prefix, 85071
                duplicate, 40097 a published rule cannot be modified.
            QuotaExceededError: 85073, the 100 rules are used.
            PermissionDeniedError: 85075, personal-type Mini Program.
        """
        v.http_url("prefix", prefix)
        v.text("path", path, max_len=v.A_PATH_MAX_CHARS)
        payload: dict[str, Any] = {"prefix": prefix, "path": path}
        if appid is not None:
            v.text("appid", appid, max_len=64)
            if not prefix.startswith(SERVICE_PREFIX):
                raise ValidationError(
                    "prefix", f"service-account rules must start with {SERVICE_PREFIX!r}"
                )
            extra = [
                name
                for name, value in (
                    ("open_version", open_version),
                    ("permit_sub_rule", permit_sub_rule),
                    ("debug_url", debug_url or None),
                )
                if value is not None
            ]
            if extra:
                raise ValidationError(
                    extra[0], "not allowed for service-account rules (those with appid)"
                )
            payload["appid"] = appid
        else:
            if open_version is None or permit_sub_rule is None:
                raise ValidationError(
                    "open_version" if open_version is None else "permit_sub_rule",
                    "required for ordinary link rules (open_version 1..3, permit_sub_rule 1..2)",
                )
            payload["open_version"] = v.int_in("open_version", open_version, 1, 3)
            payload["permit_sub_rule"] = v.int_in("permit_sub_rule", permit_sub_rule, 1, 2)
            urls = v.debug_urls(debug_url)
            for url in urls:
                if not url.startswith(prefix):
                    raise ValidationError("debug_url", f"{url!r:.80} is not under the prefix")
            payload["debug_url"] = urls
        payload["is_edit"] = 1 if v.boolean("is_edit", is_edit) else 0
        await self._transport.call(ADD, json=payload, timeout=timeout)

    async def get(
        self,
        *,
        appid: str | None = None,
        get_type: int | None = None,
        prefix_list: Sequence[str] | None = None,
        page_num: int | None = None,
        page_size: int | None = None,
        timeout: float | None = None,
    ) -> QrJumpRules:
        """List the rules (``qrcodeJumpGet``).

        Without arguments: the Mini Program's ordinary link rules. With ``appid``: a service
        account's rules for that Mini Program; ``get_type`` 0 = latest 10,000 (default),
        1 = by ``prefix_list`` (≤ 200), 2 = paged (``page_num`` from 1, ``page_size`` ≤ 200).
        """
        payload: dict[str, Any] = {}
        if appid is None:
            for name, value in (
                ("get_type", get_type),
                ("prefix_list", prefix_list),
                ("page_num", page_num),
                ("page_size", page_size),
            ):
                if value is not None:
                    raise ValidationError(name, "only for the service-account form (with appid)")
        else:
            payload["appid"] = v.text("appid", appid, max_len=64)
            kind = 0 if get_type is None else v.int_in("get_type", get_type, 0, 2)
            payload["get_type"] = kind
            if kind == 1:
                if prefix_list is None or isinstance(prefix_list, str) or not prefix_list:
                    raise ValidationError("prefix_list", "required for get_type=1: 1..200 prefixes")
                if len(prefix_list) > PREFIX_LIST_MAX:
                    raise ValidationError(
                        "prefix_list", f"at most {PREFIX_LIST_MAX} prefixes, got {len(prefix_list)}"
                    )
                payload["prefix_list"] = [v.http_url("prefix_list", p) for p in prefix_list]
            elif prefix_list is not None:
                raise ValidationError("prefix_list", "only with get_type=1")
            if kind == 2:
                payload["page_num"] = v.int_in("page_num", page_num, 1, 2**31 - 1)
                payload["page_size"] = v.int_in("page_size", page_size, 1, PAGE_SIZE_MAX)
            elif page_num is not None or page_size is not None:
                raise ValidationError("page_num/page_size", "only with get_type=2")
        data = await self._transport.call(GET, json=payload, timeout=timeout)
        return structure(data, QrJumpRules, endpoint=GET.path)

    async def delete(
        self, prefix: str, *, appid: str | None = None, timeout: float | None = None
    ) -> None:
        """Delete a rule (``qrcodeJumpDelete``); ``appid`` for service-account rules."""
        payload = {"prefix": v.http_url("prefix", prefix)}
        if appid is not None:
            payload["appid"] = v.text("appid", appid, max_len=64)
        await self._transport.call(DELETE, json=payload, timeout=timeout)

    async def publish(self, prefix: str, *, timeout: float | None = None) -> None:
        """Publish a rule (``qrcodeJumpPublish``): scans then open the *release* version.

        Spends the monthly publish quota, so it is never retried automatically once the
        request may have reached WeChat.

        Raises:
            PermissionDeniedError: 85074 — the Mini Program has no released version.
            QuotaExceededError: 886000 — the monthly publish quota is used up.
        """
        await self._transport.call(
            PUBLISH, json={"prefix": v.http_url("prefix", prefix)}, timeout=timeout
        )

    async def download(self, *, timeout: float | None = None) -> QrJumpFile:
        """Get the verification file to host under the prefix (``downloadQRCodeText``)."""
        data = await self._transport.call(DOWNLOAD, json={}, timeout=timeout)
        return structure(data, QrJumpFile, endpoint=DOWNLOAD.path)
