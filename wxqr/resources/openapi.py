"""Quota, rid and network management APIs (reference §9; events reference §1.8).

``cgi-bin/openapi/quota/get``, ``cgi-bin/clear_quota``, ``cgi-bin/clear_quota/v2``,
``cgi-bin/openapi/quota/clear``, ``cgi-bin/openapi/rid/get``, ``cgi-bin/getcallbackip``,
``cgi-bin/get_api_domain_ip`` and ``cgi-bin/callback/check``.

The three clears spend monthly budgets (``clear_quota`` and ``clear_quota/v2`` share 10 a month,
``openapi/quota/clear`` has 50), so they are never resent once the request may have reached
WeChat, like ``qrcode_jump.publish``.
"""

from __future__ import annotations

import re
from typing import Any, Final

import attrs

from .. import _validate as v
from .._converter import structure
from .._transport import Endpoint
from ..errors import ValidationError
from ..models import ApiQuota, CallbackCheck, RidInfo
from ._base import Resource

__all__ = ["OpenApi"]

GET_QUOTA: Final = Endpoint("cgi-bin/openapi/quota/get")
# Monthly budgets: never resent once they may have reached WeChat.
CLEAR_QUOTA: Final = Endpoint("cgi-bin/clear_quota", idempotent=False)
CLEAR_QUOTA_V2: Final = Endpoint("cgi-bin/clear_quota/v2", idempotent=False, needs_token=False)
CLEAR_API_QUOTA: Final = Endpoint("cgi-bin/openapi/quota/clear", idempotent=False)
GET_RID: Final = Endpoint("cgi-bin/openapi/rid/get")
CALLBACK_IPS: Final = Endpoint("cgi-bin/getcallbackip", method="GET")
API_DOMAIN_IPS: Final = Endpoint("cgi-bin/get_api_domain_ip", method="GET")
CALLBACK_CHECK: Final = Endpoint("cgi-bin/callback/check")

CGI_PATH_MAX: Final = 256
CALLBACK_ACTIONS: Final = ("dns", "ping", "all")
CALLBACK_OPERATORS: Final = ("CHINANET", "UNICOM", "CAP", "DEFAULT")
_RID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{8}-[0-9a-fA-F]{8}")
_CGI_PATH: Final = re.compile(r"/[A-Za-z0-9_\-./]+")


class _SecretBody(dict[str, Any]):
    """A request body holding the AppSecret: serialised as usual, but never shown by ``repr``.

    Tracebacks with locals, debuggers and log lines print ``repr`` of the body passed down
    the stack; this keeps the secret out of all of them.
    """

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: '***'" for k in self) + "}"


@attrs.frozen
class _IpList:
    ip_list: list[str]


def _check_cgi_path(value: Any) -> str:
    """An API path as the quota APIs take it: ``/cgi-bin/qrcode/create`` (no host, no query)."""
    v.text("cgi_path", value, max_len=CGI_PATH_MAX)
    if "://" in value or value.startswith("//"):
        raise ValidationError(
            "cgi_path",
            f"must be a path without host, like '/cgi-bin/qrcode/create', got {value!r:.60}",
        )
    if not value.startswith("/"):
        raise ValidationError("cgi_path", f"must start with '/', e.g. '/{value:.60}'")
    if "?" in value or "#" in value:
        raise ValidationError("cgi_path", "must not contain a query ('?') or fragment ('#')")
    if not _CGI_PATH.fullmatch(value):
        raise ValidationError(
            "cgi_path", "may only contain letters, digits, '_', '-', '.' and '/' (no spaces)"
        )
    if "/sns/" in value + "/":
        raise ValidationError("cgi_path", "/sns/ APIs have no quota WeChat reports (76022)")
    return str(value)


def _check_rid(value: Any) -> str:
    """A request id as WeChat prints it: three groups of 8 hex digits."""
    if value is None:
        raise ValidationError("rid", "is None: this error carried no rid")
    v.text("rid", value, max_len=64)
    if not _RID.fullmatch(value):
        raise ValidationError(
            "rid",
            "must be three groups of 8 hex digits like '617682e0-09059ac5-34a8e2ea' "
            f"(old 'hint' ids cannot be looked up), got {value!r:.40}",
        )
    return str(value)


class OpenApi(Resource):
    """Quotas, request ids and network checks (``client.openapi``).

    Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/openApi-mgnt/
    """

    __slots__ = ()

    async def get_quota(self, cgi_path: str, *, timeout: float | None = None) -> ApiQuota:
        """How much of an API's daily quota is used (``getApiQuota``).

        Args:
            cgi_path: the API's path without host or query, starting with ``/``, e.g.
                ``"/cgi-bin/qrcode/create"``. ``/sns/`` APIs are not supported by WeChat.

        Returns:
            ``daily_limit``, ``used``, ``remain`` and the rate limits WeChat reports.

        Raises:
            ValidationError: ``cgi_path`` is not such a path.
            InvalidRequestError: 76021 unknown path, 76022 not this account's API.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/openApi-mgnt/api_getapiquota.html
        """
        body = {"cgi_path": _check_cgi_path(cgi_path)}
        data = await self._transport.call(GET_QUOTA, json=body, timeout=timeout)
        return structure(data, ApiQuota, endpoint=GET_QUOTA.path)

    async def clear_quota(self, *, appid: str | None = None, timeout: float | None = None) -> None:
        """Reset the daily call counts of every API of the account (``clearQuota``).

        Spends one of the account's **10 clears a month** (shared with the admin console and
        :meth:`clear_quota_with_secret`), so it is never retried automatically once the
        request may have reached WeChat.

        Args:
            appid: the account to clear; default this client's appid (a third-party
                platform's client may name an authorised account).

        Raises:
            QuotaExceededError: 48006, this month's 10 clears are used up.
            CredentialError: 40013, the appid is not the token's account.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/openApi-mgnt/api_clearquota.html
        """
        tokens = self._transport.tokens
        target = tokens.appid if appid is None else v.text("appid", appid, max_len=64)
        await self._transport.call(CLEAR_QUOTA, json={"appid": target}, timeout=timeout)

    async def clear_quota_with_secret(self, *, timeout: float | None = None) -> None:
        """Reset every daily count using the AppSecret, not a token (``clearQuotaByAppSecret``).

        For when the token API itself is out of quota. Shares the 10 clears a month with
        :meth:`clear_quota` and is never retried automatically. The AppSecret travels in the
        JSON body (never in the URL, a log line, a ``repr`` or an exception).

        Raises:
            ValidationError: the client has no AppSecret (it was built with a
                ``token_provider``).
            QuotaExceededError: 48006, this month's 10 clears are used up.
            CredentialError: 40013 wrong appid, 40125 wrong secret.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/openApi-mgnt/api_clearquotabyappsecret.html
        """
        tokens = self._transport.tokens
        if not tokens.has_secret:
            raise ValidationError(
                "secret",
                "clear_quota_with_secret needs the AppSecret; this client uses a token_provider",
            )
        body = _SecretBody(appid=tokens.appid)
        tokens.put_secret(body, "appsecret")
        await self._transport.call(CLEAR_QUOTA_V2, json=body, timeout=timeout)

    async def clear_api_quota(self, cgi_path: str, *, timeout: float | None = None) -> None:
        """Reset the daily call count of one API (``clearApiQuota``).

        Spends one of the account's **50 API clears a month**; never retried automatically.

        Args:
            cgi_path: as in :meth:`get_quota`.

        Raises:
            ValidationError: ``cgi_path`` is not such a path.
            QuotaExceededError: 45009, this month's 50 API clears are used up.
            InvalidRequestError: 76021 unknown path, 76022 not this account's API.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/openApi-mgnt/api_clearapiquota.html
        """
        body = {"cgi_path": _check_cgi_path(cgi_path)}
        await self._transport.call(CLEAR_API_QUOTA, json=body, timeout=timeout)

    async def get_rid(self, rid: str, *, timeout: float | None = None) -> RidInfo:
        """Look up what WeChat recorded about a failed request (``getRidInfo``).

        Pass the ``rid`` of an :class:`~wxqr.APIError`: ``await wx.openapi.get_rid(exc.rid)``.
        Only the account that made the request may look it up, for 7 days.

        Returns:
            The record; its ``request_url`` holds the access token used (sensitive).

        Raises:
            ValidationError: ``rid`` is not three groups of 8 hex digits.
            InvalidRequestError: 76001 unknown, 76002 malformed, 76003 another account's,
                76004 older than 7 days.

        Docs: https://developers.weixin.qq.com/miniprogram/dev/server/API/openApi-mgnt/api_getridinfo.html
        """
        body = {"rid": _check_rid(rid)}
        data = await self._transport.call(GET_RID, json=body, timeout=timeout)
        record = data.get("request")
        return structure(record if isinstance(record, dict) else {}, RidInfo, endpoint=GET_RID.path)

    async def callback_ips(self, *, timeout: float | None = None) -> list[str]:
        """The IPs WeChat pushes callbacks from, for an inbound firewall (``getCallbackIp``).

        They change: WeChat recommends fetching them once a day.

        Docs: https://developers.weixin.qq.com/doc/service/api/base/api_getcallbackip
        """
        data = await self._transport.call(CALLBACK_IPS, timeout=timeout)
        return structure(data, _IpList, endpoint=CALLBACK_IPS.path).ip_list

    async def api_domain_ips(self, *, timeout: float | None = None) -> list[str]:
        """The IPs of ``api.weixin.qq.com`` (``getApiDomainIp``); do not pin them for long.

        Docs: https://developers.weixin.qq.com/doc/service/api/base/api_getapidomainip
        """
        data = await self._transport.call(API_DOMAIN_IPS, timeout=timeout)
        return structure(data, _IpList, endpoint=API_DOMAIN_IPS.path).ip_list

    async def check_callback(
        self,
        *,
        action: str = "all",
        operator: str = "DEFAULT",
        timeout: float | None = None,
    ) -> CallbackCheck:
        """Have WeChat resolve and ping the account's callback URL (``callbackCheck``).

        Args:
            action: ``"dns"``, ``"ping"`` or ``"all"``.
            operator: the network to check from: ``"CHINANET"``, ``"UNICOM"``, ``"CAP"``
                (Tencent) or ``"DEFAULT"`` (chosen by IP). Sent as ``check_operator``.

        Raises:
            ValidationError: ``action`` or ``operator`` is not one of those.
            InvalidRequestError: 40201, no callback URL is configured.

        Docs: https://developers.weixin.qq.com/doc/service/api/base/api_callbackcheck
        """
        body = {
            "action": v.one_of("action", action, CALLBACK_ACTIONS),
            "check_operator": v.one_of("operator", operator, CALLBACK_OPERATORS),
        }
        data = await self._transport.call(CALLBACK_CHECK, json=body, timeout=timeout)
        return structure(data, CallbackCheck, endpoint=CALLBACK_CHECK.path)
