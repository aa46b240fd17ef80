"""Mini Program links: URL Scheme, NFC scheme, URL Link and Short Link (reference/links.md).

They open a Mini Program where a code cannot be scanned: SMS, e-mail, H5 pages outside WeChat,
NFC tags. Call them with the Mini Program's client.

* ``weixin://dl/business/?t=...`` (encrypted URL Scheme, :meth:`Links.generate_scheme`) and
  ``https://wxaurl.cn/...`` (URL Link, :meth:`Links.generate_url_link`) live at most 30 days
  since 2022-04-11 and, since 2023-12-19, may be opened by many users. Together they are capped
  at 500,000 generated a day (44993) and a daily opening quota (85406; 3,000,000 or 6,000,000
  depending on the page — ask :meth:`Links.remaining_visits`).
* The three generators share WeChat's 100 calls/second (44990), enforced client-side by the
  ``"wxalink"`` rate limit (see ``wxqr.DEFAULT_RATE_LIMITS``).
* ``#小程序://name/title/XXXXXXXXXXXXXXX`` (Short Link, :meth:`Links.generate_short_link`) only
  works inside WeChat: up to 10,000,000 a day (45009), 100,000 permanent ones in a lifetime
  (85400), short-term ones live 30 days.

``is_expire`` is never sent: it is fixed to ``true`` since 2022 and ``false`` has no effect.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, TypeVar

from .. import _validate as v
from .._converter import structure
from .._transport import Endpoint
from ..errors import ResponseDecodeError, ValidationError
from ..models import CloudBase, EnvVersion, Scheme, SchemeInfo, UrlLink, UrlLinkInfo
from ._base import Resource

__all__ = ["Links"]

GENERATE_SCHEME: Final = Endpoint("wxa/generatescheme", rate_bucket="wxalink")
QUERY_SCHEME: Final = Endpoint("wxa/queryscheme")
GENERATE_NFC_SCHEME: Final = Endpoint("wxa/generatenfcscheme", rate_bucket="wxalink")
GENERATE_URL_LINK: Final = Endpoint("wxa/generate_urllink", rate_bucket="wxalink")
QUERY_URL_LINK: Final = Endpoint("wxa/query_urllink")
GENERATE_SHORT_LINK: Final = Endpoint("wxa/genwxashortlink")
# A permanent Short Link spends one of 100,000 in the account's lifetime (85400): never resent
# once the request may have reached WeChat (a duplicate would waste a slot for good).
GENERATE_PERMANENT_SHORT_LINK: Final = Endpoint("wxa/genwxashortlink", idempotent=False)

#: WeChat truncates longer Short Link titles with "..." (field note of 2026-02-03).
SHORT_LINK_TITLE_SHOWN: Final = 20
#: wxqr's bound on a title (WeChat documents none beyond the truncation).
SHORT_LINK_TITLE_MAX: Final = 256
MODEL_ID_MAX: Final = 128
SN_MAX: Final = 128
LINK_MAX: Final = 2048

T = TypeVar("T")


def _jump_wxa(path: str | None, query: str | None, env_version: str | None) -> dict[str, Any]:
    target: dict[str, Any] = {}
    if path is not None:
        target["path"] = v.link_path(path)
    if query is not None:
        target["query"] = v.link_query("query", query)
    if env_version is not None:
        target["env_version"] = v.env_version(env_version)
    return target


def _cloud_base(value: Any) -> dict[str, str]:
    if not isinstance(value, CloudBase):
        raise ValidationError("cloud_base", "must be a wxqr.CloudBase(env=..., ...)")
    body = {"env": v.text("cloud_base.env", value.env, max_len=128)}
    if value.domain:
        body["domain"] = v.text("cloud_base.domain", value.domain, max_len=256)
    if value.path:
        v.text("cloud_base.path", value.path, max_len=v.LINK_PATH_MAX)
        if "?" in value.path:
            raise ValidationError("cloud_base.path", "must not contain a query; use query=")
        body["path"] = value.path
    if value.query:
        body["query"] = v.link_query("cloud_base.query", value.query)
    if value.resource_appid:
        body["resource_appid"] = v.text(
            "cloud_base.resource_appid", value.resource_appid, max_len=64
        )
    return body


def _section(data: Mapping[str, Any], key: str, cls: type[T], endpoint: str) -> T:
    section = data.get(key)
    if not isinstance(section, Mapping):
        raise ResponseDecodeError(f"answer has no {key!r} object", endpoint=endpoint)
    return structure(section, cls, endpoint=endpoint)


class Links(Resource):
    """URL Schemes, URL Links and Short Links of a Mini Program (``client.links``).

    Docs: https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/url-scheme
    """

    __slots__ = ()

    async def generate_scheme(
        self,
        *,
        path: str | None = None,
        query: str | None = None,
        env_version: EnvVersion | None = None,
        expires_at: datetime | int | None = None,
        expires_in_days: int | None = None,
        timeout: float | None = None,
    ) -> Scheme:
        """Generate an encrypted URL Scheme (``generateScheme``).

        Pass at most one of ``expires_at`` / ``expires_in_days``; with neither, WeChat's
        default applies (30 days since 2022-04-11).

        Args:
            path: a page of the released Mini Program, without a query; ``None`` or ``""`` =
                the home page. A leading ``/`` is allowed (the official example uses one).
            query: ``k1=v1&k2=v2``, ≤ 1024 characters of ``0-9 a-z A-Z`` and
                ``!#$&'()*+,/:;=?@-._~%`` (``%`` allowed: url-encode anything else).
            env_version: ``"release"`` (WeChat's default), ``"trial"`` or ``"develop"``; only
                outside WeChat.
            expires_at: a timezone-aware ``datetime`` or integer Unix **seconds**, 60 s .. 30
                days from now (sent as ``expire_type=0, expire_time``). A value that looks like
                milliseconds is refused.
            expires_in_days: 1..30 (sent as ``expire_type=1, expire_interval``).
            timeout: per-call timeout in seconds.

        Returns:
            The scheme; ``.openlink`` is ``weixin://dl/business/?t=...``.

        Raises:
            ValidationError: an argument is out of range (before any request).
            RateLimitError: 44990, more than 100 generations a second (after waiting).
            QuotaExceededError: 44993, 500,000 generated today.
            PermissionDeniedError: 85079, the Mini Program is not released.
            InvalidRequestError: 40165 bad path, 40212 bad query, 85401 bad expiry.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-scheme/api_generatescheme
        """
        target = _jump_wxa(path, query, env_version)
        expiry = v.link_expiry(expires_at, expires_in_days, time.time())
        payload: dict[str, Any] = {}
        if target:
            payload["jump_wxa"] = target
        payload.update(expiry)
        data = await self._transport.call(GENERATE_SCHEME, json=payload, timeout=timeout)
        return structure(data, Scheme, endpoint=GENERATE_SCHEME.path)

    async def query_scheme(self, scheme: str, *, timeout: float | None = None) -> SchemeInfo:
        """Look up an encrypted or plaintext URL Scheme (``queryScheme``, ``query_type=0``).

        Args:
            scheme: ``weixin://dl/business/?t=...`` (optionally with ``&cq=...``).
            timeout: per-call timeout in seconds.

        Returns:
            Its appid, path, query, create/expire times and env_version.

        Raises:
            ValidationError: ``scheme`` is empty or over 2048 characters.
            InvalidRequestError: 85403, no such scheme.
            QuotaExceededError: 85406, today's visit quota is used up.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-scheme/api_queryscheme
        """
        payload = {"scheme": v.text("scheme", scheme, max_len=LINK_MAX), "query_type": 0}
        data = await self._transport.call(QUERY_SCHEME, json=payload, timeout=timeout)
        return _section(data, "scheme_info", SchemeInfo, QUERY_SCHEME.path)

    async def remaining_visits(self, *, timeout: float | None = None) -> int:
        """Today's remaining opening quota of URL Schemes and URL Links (``query_type=1``).

        The documented daily cap is 3,000,000 (API pages) or 6,000,000 (guide); this asks
        WeChat for the live value.

        Returns:
            ``quota_info.remain_visit_quota``.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-scheme/api_queryscheme
        """
        data = await self._transport.call(QUERY_SCHEME, json={"query_type": 1}, timeout=timeout)
        quota = data.get("quota_info")
        left = quota.get("remain_visit_quota") if isinstance(quota, Mapping) else None
        if isinstance(left, bool) or not isinstance(left, int):
            raise ResponseDecodeError(
                "answer has no integer quota_info.remain_visit_quota", endpoint=QUERY_SCHEME.path
            )
        return left

    async def generate_nfc_scheme(
        self,
        *,
        model_id: str,
        sn: str | None = None,
        path: str | None = None,
        query: str | None = None,
        env_version: EnvVersion | None = None,
        timeout: float | None = None,
    ) -> Scheme:
        """Generate the URL Scheme an NFC tag opens (``generateNFCScheme``).

        Not bound by the 30-day expiry; several users may open it. The device must be
        onboarded and "NFC 标签调起小程序" applied for (40002 otherwise).

        Args:
            model_id: the device ``model_id`` from device onboarding (required).
            sn: the device serial number, only for one-code-per-device models.
            path, query, env_version: as in :meth:`generate_scheme`.
            timeout: per-call timeout in seconds.

        Raises:
            ValidationError: ``model_id`` missing or empty, or another argument out of range.
            InvalidRequestError: 9800003 bad model_id, 9800008 sn required, 9800009 sn must be
                empty.
            PermissionDeniedError: 9800007, the model lacks the capability.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-scheme/api_generatenfcscheme
        """
        target = _jump_wxa(path, query, env_version)
        payload: dict[str, Any] = {}
        if target:
            payload["jump_wxa"] = target
        payload["model_id"] = v.text("model_id", model_id, max_len=MODEL_ID_MAX)
        if sn is not None:
            payload["sn"] = v.text("sn", sn, max_len=SN_MAX)
        data = await self._transport.call(GENERATE_NFC_SCHEME, json=payload, timeout=timeout)
        return structure(data, Scheme, endpoint=GENERATE_NFC_SCHEME.path)

    async def generate_url_link(
        self,
        *,
        path: str | None = None,
        query: str | None = None,
        env_version: EnvVersion | None = None,
        expires_at: datetime | int | None = None,
        expires_in_days: int | None = None,
        cloud_base: CloudBase | None = None,
        timeout: float | None = None,
    ) -> UrlLink:
        """Generate an encrypted URL Link (``generateUrlLink``).

        Args:
            path, query, env_version, expires_at, expires_in_days: as in
                :meth:`generate_scheme` (same limits, same 500,000/day and 100/s budgets).
            cloud_base: a :class:`wxqr.CloudBase` static H5 page to show as the interstitial
                page instead of WeChat's (``env`` required; 85088 if cloud development is off).
            timeout: per-call timeout in seconds.

        Returns:
            The link; ``.url_link`` is ``https://wxaurl.cn/...``.

        Raises:
            As :meth:`generate_scheme`.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-link/api_generateurllink
        """
        payload: dict[str, Any] = {}
        if path is not None:
            payload["path"] = v.link_path(path)
        if query is not None:
            payload["query"] = v.link_query("query", query)
        if env_version is not None:
            payload["env_version"] = v.env_version(env_version)
        cloud = _cloud_base(cloud_base) if cloud_base is not None else None
        payload.update(v.link_expiry(expires_at, expires_in_days, time.time()))
        if cloud is not None:
            payload["cloud_base"] = cloud
        data = await self._transport.call(GENERATE_URL_LINK, json=payload, timeout=timeout)
        return structure(data, UrlLink, endpoint=GENERATE_URL_LINK.path)

    async def query_url_link(self, url_link: str, *, timeout: float | None = None) -> UrlLinkInfo:
        """Look up a URL Link (``queryUrlLink``, ``query_type=0``).

        Args:
            url_link: ``https://wxaurl.cn/...`` (optionally with ``?cq=...``).
            timeout: per-call timeout in seconds.

        Raises:
            ValidationError: ``url_link`` is not an http(s) URL.
            InvalidRequestError: 85403, no such link.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/url-link/api_queryurllink
        """
        payload = {"url_link": v.http_url("url_link", url_link), "query_type": 0}
        data = await self._transport.call(QUERY_URL_LINK, json=payload, timeout=timeout)
        return _section(data, "url_link_info", UrlLinkInfo, QUERY_URL_LINK.path)

    async def generate_short_link(
        self,
        page_url: str,
        *,
        title: str | None = None,
        permanent: bool = False,
        timeout: float | None = None,
    ) -> str:
        """Generate a Short Link ``#小程序://name/title/XXXXXXXXXXXXXXX`` (``generateShortLink``).

        It only opens inside WeChat (paste it into a chat). Short-term links live 30 days and
        are unlimited in number; permanent ones are capped at 100,000 per account for good
        (85400), so a permanent request is never resent automatically. Up to 10,000,000 a
        day of both (45009). WeChat documents Short Links for e-commerce categories only
        (43104 otherwise).

        Args:
            page_url: a released page *with* an optional query, ≤ 1024 characters, e.g.
                ``"pages/index/index?id=7"``.
            title: the page title shown; WeChat cuts it to 20 characters plus ``...`` (longer
                titles warn with ``UserWarning``; over 256 characters are refused).
            permanent: a permanent link (``is_permanent``) instead of a 30-day one.
            timeout: per-call timeout in seconds.

        Returns:
            The link text.

        Raises:
            ValidationError: an argument is out of range.
            InvalidRequestError: 40066 page not in the released app, 40225 bad title.
            QuotaExceededError: 45009 daily cap, 85400 permanent cap.
            PermissionDeniedError: 43104, not an e-commerce category.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/short-link/api_generateshortlink
        """
        payload: dict[str, Any] = {"page_url": v.page_url(page_url)}
        if title is not None:
            v.text("title", title, min_len=0, max_len=SHORT_LINK_TITLE_MAX)
            if len(title) > SHORT_LINK_TITLE_SHOWN:
                warnings.warn(
                    f"title has {len(title)} characters; WeChat shows the first "
                    f"{SHORT_LINK_TITLE_SHOWN} followed by '...'",
                    UserWarning,
                    stacklevel=2,
                )
            payload["page_title"] = title
        payload["is_permanent"] = v.boolean("permanent", permanent)
        endpoint = GENERATE_PERMANENT_SHORT_LINK if permanent else GENERATE_SHORT_LINK
        data = await self._transport.call(endpoint, json=payload, timeout=timeout)
        link = data.get("link")
        if not isinstance(link, str) or not link:
            raise ResponseDecodeError("answer has no 'link' string", endpoint=endpoint.path)
        return link
