"""Every exception wxqr raises, and the errcode catalogue that maps WeChat answers onto them.

::

    WxqrError
    ├── ValidationError            (also a ValueError; raised before any request is sent)
    ├── TransportError             (network failure or timeout, after retries)
    ├── HTTPStatusError            (a non-2xx answer)
    │   └── TicketNotFoundError    (showqrcode 404: unknown or expired ticket)
    ├── ResponseDecodeError        (HTML, truncated, malformed: neither image nor JSON)
    │   └── ResponseTooLargeError  (the answer exceeds ``max_response_bytes``: not read)
    ├── TokenCacheError            (the token cache, e.g. Redis, failed)
    └── APIError                   (WeChat answered with a non-zero errcode)
        ├── SystemBusyError        (-1, 886001: transient, retried)
        ├── AccessTokenError       (40001, 40014, 42001: token refreshed and call retried once)
        ├── CredentialError        (wrong AppID/AppSecret, IP whitelist, frozen secret)
        ├── RateLimitError         (44990, 45011: carries ``retry_after``)
        ├── QuotaExceededError     (45009, 45029, 886000, 48006, ...: not retried)
        ├── PermissionDeniedError  (API not authorised, account state)
        ├── AdminConfirmationError (895xx: waiting for a human administrator)
        └── InvalidRequestError    (400xx / 41xxx / 47xxx / 85xxx / 941xxxx argument errors)

``CATALOGUE`` is the single table that decides which class an errcode raises and whether it is
retryable. An errcode that is not in it raises a plain :class:`APIError`.

No exception message or ``repr`` ever contains an AppSecret or an access token: messages are
built from WeChat's ``errmsg`` (which never echoes them) and the endpoint's *name*, not its URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

__all__ = [
    "CATALOGUE",
    "TOKEN_ERRCODES",
    "APIError",
    "AccessTokenError",
    "AdminConfirmationError",
    "CredentialError",
    "ErrorCode",
    "HTTPStatusError",
    "InvalidRequestError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "SystemBusyError",
    "TicketNotFoundError",
    "TokenCacheError",
    "TransportError",
    "ValidationError",
    "WxqrError",
    "error_for",
    "parse_rid",
]


class WxqrError(Exception):
    """Base class of every exception raised by wxqr."""

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions pickle as ``cls(*args)``, but ours are built from keyword arguments and
        # carry attributes (errcode, retry_after, ...): rebuild bare, then restore both.
        return (_rebuild_error, (type(self), self.args), dict(self.__dict__))


def _rebuild_error(cls: type[WxqrError], args: tuple[object, ...]) -> WxqrError:
    error = cls.__new__(cls)
    error.args = args
    return error


class ValidationError(WxqrError, ValueError):
    """An argument is outside what WeChat accepts; raised before any network I/O.

    Attributes:
        argument: the name of the offending argument (e.g. ``"scene_id"``).
    """

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        super().__init__(f"{argument}: {message}")


class TransportError(WxqrError):
    """The request could not be completed (connection failure, timeout), after any retries."""

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        self.endpoint = endpoint
        super().__init__(message if endpoint is None else f"{endpoint}: {message}")


class HTTPStatusError(WxqrError):
    """WeChat (or a proxy in front of it) answered with a non-2xx HTTP status."""

    def __init__(self, status_code: int, *, endpoint: str, detail: str = "") -> None:
        self.status_code = status_code
        self.endpoint = endpoint
        message = f"{endpoint}: HTTP {status_code}"
        super().__init__(f"{message} ({detail})" if detail else message)


class TicketNotFoundError(HTTPStatusError):
    """``showqrcode`` answered 404: the ticket is unknown, malformed or expired."""


class ResponseDecodeError(WxqrError):
    """The body was neither the expected image nor a JSON object (HTML page, truncated, ...)."""

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        self.endpoint = endpoint
        super().__init__(message if endpoint is None else f"{endpoint}: {message}")


class ResponseTooLargeError(ResponseDecodeError):
    """The answer is larger than the client's ``max_response_bytes``; it was not read.

    Raised as soon as the ``Content-Length`` announces more, or the (decompressed) body streams
    past the cap; the connection is dropped. Not retried: the same call would get the same.

    Attributes:
        limit: the cap in bytes.
    """

    def __init__(
        self, limit: int, *, endpoint: str | None = None, declared: int | None = None
    ) -> None:
        self.limit = limit
        what = f"announces {declared:,} bytes" if declared is not None else "streamed past it"
        super().__init__(f"answer over max_response_bytes={limit:,}: {what}", endpoint=endpoint)


class TokenCacheError(WxqrError):
    """The token cache (e.g. Redis) could not be read, written or locked."""


class APIError(WxqrError):
    """WeChat answered with a non-zero ``errcode``.

    Attributes:
        errcode: WeChat's numeric error code.
        errmsg: WeChat's message, without the trailing ``rid``.
        rid: the request id WeChat support asks for (``None`` when absent).
        endpoint: the API's path, e.g. ``"cgi-bin/qrcode/create"``.
    """

    def __init__(self, errcode: int, errmsg: str, *, rid: str | None = None, endpoint: str) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.rid = rid
        self.endpoint = endpoint
        text = f"{endpoint}: errcode {errcode}: {errmsg}"
        super().__init__(f"{text} (rid: {rid})" if rid else text)

    @property
    def retryable(self) -> bool:
        """Whether the catalogue classes this errcode as transient."""
        entry = CATALOGUE.get(self.errcode)
        return entry is not None and entry.retryable

    @property
    def meaning(self) -> str | None:
        """The catalogue's explanation of the errcode on this endpoint, if known."""
        entry = CATALOGUE.get(self.errcode)
        return entry.meaning_for(self.endpoint) if entry else None

    @property
    def account_level(self) -> bool:
        """Whether the account or its credentials are refused, so every call would fail alike.

        True for the catalogue's account-level rows (40013, 40125, 40164, 40243...) and for
        40001 answered by the token endpoints (a wrong AppSecret there).
        """
        if self.errcode == 40001 and self.endpoint in _TOKEN_ENDPOINTS:
            return True
        entry = CATALOGUE.get(self.errcode)
        return entry is not None and entry.account_level


class SystemBusyError(APIError):
    """WeChat is busy (-1, 886001); retried with backoff on idempotent calls."""


class AccessTokenError(APIError):
    """The access token was rejected (40001, 40014, 42001) even after a refresh."""


class CredentialError(APIError):
    """The AppID/AppSecret or the caller's IP is not accepted (wrong secret, IP whitelist...)."""


class RateLimitError(APIError):
    """A per-second or per-minute rate limit was hit (44990, 45011).

    Attributes:
        retry_after: seconds after which the call may succeed.
    """

    def __init__(
        self,
        errcode: int,
        errmsg: str,
        *,
        rid: str | None = None,
        endpoint: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(errcode, errmsg, rid=rid, endpoint=endpoint)
        entry = CATALOGUE.get(errcode)
        self.retry_after = (
            retry_after if retry_after is not None else (entry.retry_after if entry else None)
        )


class QuotaExceededError(APIError):
    """A daily, monthly or lifetime quota is exhausted (45009, 45029, 886000, 48006...)."""


class PermissionDeniedError(APIError):
    """The account (or its token) may not use this API in its current state."""


class AdminConfirmationError(APIError):
    """The call waits for, or was rejected by, an administrator's confirmation (895xx)."""


class InvalidRequestError(APIError):
    """WeChat rejected an argument of the request."""


@attrs.frozen
class ErrorCode:
    """One row of the errcode catalogue.

    Attributes:
        code: the errcode.
        errmsg: the English ``errmsg`` WeChat returns (the emulator answers with it).
        meaning: what it means for the caller.
        error: the exception class raised for it.
        retryable: transient: the same request may succeed if retried after a backoff.
        retry_after: for rate limits, how long to wait before retrying, in seconds.
        account_level: the account or its credentials are refused (wrong AppID/AppSecret, IP
            not whitelisted, frozen secret): every call of this client fails the same way
            until a human fixes the configuration, so batch jobs stop and token fetches fail
            fast instead of repeating the request.
        per_endpoint: endpoint path -> the meaning of this errcode on that endpoint, where it
            differs from ``meaning`` (45009 is a daily quota on most APIs but a per-minute
            limit on some).
    """

    code: int
    errmsg: str
    meaning: str
    error: type[APIError]
    retryable: bool = False
    retry_after: float | None = None
    account_level: bool = False
    per_endpoint: Mapping[str, str] = attrs.field(factory=lambda: MappingProxyType({}))

    def meaning_for(self, endpoint: str) -> str:
        """The meaning of this errcode when ``endpoint`` answered it."""
        return self.per_endpoint.get(endpoint, self.meaning)


def _catalogue(*rows: ErrorCode) -> Mapping[int, ErrorCode]:
    table = {row.code: row for row in rows}
    assert len(table) == len(rows), "duplicate errcode in the catalogue"
    for code, meanings in _LINK_MEANINGS.items():
        row = table[code]
        table[code] = attrs.evolve(
            row, per_endpoint=MappingProxyType({**meanings, **row.per_endpoint})
        )
    return MappingProxyType(table)


# -- Mini Program links (reference/links.md) -----------------------------------------------------
# The link APIs answer some errcodes that other APIs answer too, with their own meaning there.
# Those meanings are merged into the rows' ``per_endpoint`` by ``_catalogue`` (kept in one block
# so the rows themselves stay as the other APIs define them).
_SCHEME, _NFC, _URLLINK, _SHORTLINK = (
    "wxa/generatescheme",
    "wxa/generatenfcscheme",
    "wxa/generate_urllink",
    "wxa/genwxashortlink",
)
_QUERYSCHEME, _QUERYURLLINK = "wxa/queryscheme", "wxa/query_urllink"
_LINK_GENERATORS: Final = (_SCHEME, _NFC, _URLLINK)
_LINK_MEANINGS: Final[Mapping[int, Mapping[str, str]]] = {
    40002: {
        **dict.fromkeys(
            (_SCHEME, _URLLINK, _QUERYSCHEME),
            "no permission to generate links (personal-subject Mini Program, or not in "
            "mainland China)",
        ),
        _NFC: "no permission: the NFC capability has not been applied for",
    },
    40013: dict.fromkeys(_LINK_GENERATORS, "link generation is banned for this AppID"),
    40066: {_SHORTLINK: "page_url is not a page of the released Mini Program"},
    44990: dict.fromkeys(
        _LINK_GENERATORS,
        "more than 100 calls per second (URL Scheme / NFC scheme / URL Link generation)",
    ),
    45009: {_SHORTLINK: "more than 10,000,000 Short Links generated today"},
}


_E = ErrorCode
_Busy, _Tok, _Cred, _Rate = SystemBusyError, AccessTokenError, CredentialError, RateLimitError
_Quota, _Perm, _Admin, _Arg = (
    QuotaExceededError,
    PermissionDeniedError,
    AdminConfirmationError,
    InvalidRequestError,
)

#: errcode -> ErrorCode. Sources: reference/wechat-api.md §1-§9 (official pages S1-S16).
CATALOGUE: Final[Mapping[int, ErrorCode]] = _catalogue(
    # -- transient --------------------------------------------------------------------------
    _E(-1, "system error", "系统繁忙，请稍候再试 (system busy, retry later)", _Busy, True),
    _E(886001, "system error", "系统繁忙，请重试 (qrcodejump: system busy, retry)", _Busy, True),
    # -- access token -----------------------------------------------------------------------
    _E(
        40001,
        "invalid credential, access_token is invalid or not latest",
        "access_token invalid or superseded (on the token API: wrong AppSecret)",
        _Tok,
    ),
    _E(40014, "invalid access_token", "malformed or invalid access_token", _Tok),
    _E(42001, "access_token expired", "access_token expired", _Tok),
    # -- credentials / configuration ----------------------------------------------------------
    _E(
        40002,
        "invalid grant_type",
        "grant_type must be client_credential",
        _Cred,
        account_level=True,
    ),
    _E(40013, "invalid appid", "AppID is wrong", _Cred, account_level=True),
    _E(40125, "invalid appsecret", "AppSecret is wrong", _Cred, account_level=True),
    _E(
        40164,
        "invalid ip, not in whitelist",
        "caller IP not in the API IP whitelist",
        _Cred,
        account_level=True,
    ),
    _E(
        40243,
        "appsecret frozen",
        "AppSecret 已冻结 (frozen): unfreeze it, then retry",
        _Cred,
        account_level=True,
    ),
    _E(
        45035,
        "access clientip is not registered, not in ip-white-list",
        "IP whitelist",
        _Cred,
        account_level=True,
    ),
    _E(
        61004,
        "access clientip is not registered",
        "caller IP not registered",
        _Cred,
        account_level=True,
    ),
    # -- rate limits ----------------------------------------------------------------------------
    _E(
        44990,
        "reach max api second frequence limit",
        "more than 5 requests per second (qrcodejump family)",
        _Rate,
        True,
        1.0,
    ),
    _E(
        45011,
        "api minute-quota reach limit, must slower, retry next minute",
        "per-minute limit reached; retry next minute",
        _Rate,
        True,
        60.0,
    ),
    # -- quotas (not retryable) -------------------------------------------------------------
    _E(
        45009,
        "reach max api daily quota limit",
        "daily quota of this API exhausted: see it with wx.openapi.get_quota(cgi_path), reset "
        "it with wx.openapi.clear_api_quota(cgi_path) (50 a month) or wx.openapi.clear_quota() "
        "(every API, 10 a month), or wait for tomorrow",
        _Quota,
        per_endpoint=MappingProxyType(
            {
                # reference §6.2, §7 [S12]: the legacy wxacode page used 45009 for this limit.
                "wxa/getwxacodeunlimit": (
                    "per-minute limit of getwxacodeunlimit (5,000 calls/minute): slow down and "
                    "retry next minute; clearing the daily quota does not help"
                ),
                "cgi-bin/stable_token": (
                    "stable_token quota exhausted (500,000 calls a day, or the 20 forced "
                    "refreshes a day): wait for tomorrow, or wx.openapi.clear_quota_with_secret()"
                ),
                "cgi-bin/token": (
                    "cgi-bin/token daily quota (2,000 a day) exhausted: reset it with "
                    "wx.openapi.clear_quota_with_secret() (needs no token) or wait for tomorrow"
                ),
                # (inferred) the only quota code clearApiQuota documents (reference §9.3).
                "cgi-bin/openapi/quota/clear": (
                    "the 50 clear_api_quota resets of this month are used up"
                ),
            }
        ),
    ),
    _E(45029, "qrcode count out of limit", "permanent QR / wxacode A+C lifetime cap", _Quota),
    _E(45047, "out of response count limit", "response count limit", _Quota),
    _E(
        48006,
        "forbid to clear quota because of reaching the limit",
        "the 10 quota clears of this month (clear_quota and clear_quota/v2 together) are used up",
        _Quota,
    ),
    _E(85073, "prefix beyond limit", "jump-rule list full (100 rules)", _Quota),
    _E(886000, "publish quota reached", "本月发布次数已达上限 (monthly publish limit)", _Quota),
    # -- permission / account state ---------------------------------------------------------
    _E(42007, "access_token and refresh_token exception", "OAuth tokens invalidated", _Perm),
    _E(43004, "require subscribe", "the user must follow the account", _Perm),
    _E(48001, "api unauthorized", "account lacks this API, or wrong token type", _Perm),
    _E(
        48004,
        "api forbidden for irregularities, view detail on mp.weixin.qq.com",
        "API banned for violations",
        _Perm,
    ),
    _E(50001, "user unauthorized", "user not authorised for this API", _Perm),
    _E(50002, "user limited", "account frozen, cancelled or limited", _Perm, account_level=True),
    _E(
        50004,
        "user not allow to use accesstoken, maybe for punishment",
        "token API forbidden for this account",
        _Perm,
        account_level=True,
    ),
    _E(50007, "account frozen", "账号已冻结 (account frozen)", _Perm, account_level=True),
    _E(
        61007,
        "api is unauthorized to component",
        "permission set not granted to third party",
        _Perm,
    ),
    _E(85074, "not published", "Mini Program has no released version yet", _Perm),
    _E(85075, "can not access", "personal-type Mini Programs cannot set jump rules", _Perm),
    # -- waiting for an administrator ---------------------------------------------------------
    _E(
        89501,
        "pending confirmation exists",
        "已有待确认的请求，请稍后重试",
        _Admin,
        account_level=True,
    ),
    _E(89502, "waiting for admin confirmation", "请耐心等待管理员确认", _Admin, account_level=True),
    _E(
        89503,
        "this call needs admin confirmation",
        "此次调用需要管理员确认，请耐心等候",
        _Admin,
        account_level=True,
    ),
    _E(
        89504,
        "waiting for admin confirmation",
        "正在等管理员确认，请耐心等待",
        _Admin,
        account_level=True,
    ),
    _E(
        89505,
        "waiting for admin confirmation",
        "正在等管理员确认，请稍后重试",
        _Admin,
        account_level=True,
    ),
    _E(
        89506,
        "ip rejected by admin, retry after 24 hours",
        "管理员拒绝，24 小时后重试",
        _Admin,
        account_level=True,
    ),
    _E(
        89507,
        "ip rejected by admin, retry after 1 hour",
        "管理员拒绝，1 小时后重试",
        _Admin,
        account_level=True,
    ),
    # -- invalid requests ----------------------------------------------------------------------
    _E(40003, "invalid openid", "bad OpenID", _Arg),
    _E(40029, "invalid code", "invalid OAuth code", _Arg),
    _E(40052, "invalid action name", "qrcode/create: bad or missing action_name", _Arg),
    _E(
        40053,
        "invalid action info, please check document",
        "qrcode/create: bad scene_id / scene_str",
        _Arg,
    ),
    _E(40066, "invalid url", "URL not as documented", _Arg),
    _E(
        40166,
        "invalid appid",
        "qrcodejumpget: the appid parameter (the Mini Program) is invalid",
        _Arg,
    ),
    # callback/check (events reference §1.8; errmsg texts unconfirmed, meanings official)
    _E(40201, "invalid url", "callback/check: bad URL, usually no callback URL is set", _Arg),
    _E(40202, "invalid action", "callback/check: action must be dns, ping or all", _Arg),
    _E(
        40203,
        "invalid check_operator",
        "callback/check: check_operator must be CHINANET, UNICOM, CAP or DEFAULT",
        _Arg,
    ),
    _E(40097, "invalid args", "invalid argument (or editing a published jump rule)", _Arg),
    _E(40129, "invalid scene", "wxacode: illegal characters in scene", _Arg),
    _E(
        40159,
        "invalid length for path, or the data is not json string",
        "wxacode: path empty or too long, or body not JSON",
        _Arg,
    ),
    _E(
        40169,
        "invalid length for scene, or the data is not json string",
        "wxacode: scene empty or over 32 characters, or body not JSON",
        _Arg,
    ),
    _E(41001, "access_token missing", "no access_token parameter", _Arg),
    _E(41002, "appid missing", "no appid parameter", _Arg),
    _E(41004, "appsecret missing", "no secret parameter", _Arg),
    _E(41018, "missing component_appid", "no component_appid parameter", _Arg),
    _E(41030, "invalid page", "wxacode: page not released, leading '/' or has a query", _Arg),
    _E(43001, "require GET method", "must be GET", _Arg),
    _E(43002, "require POST method", "must be POST", _Arg),
    _E(43003, "require https", "must be HTTPS", _Arg),
    _E(44002, "empty post data", "empty request body", _Arg),
    _E(45002, "content size out of limit", "content too large", _Arg),
    _E(47001, "data format error", "JSON parse error or missing parameters", _Arg),
    _E(47003, "argument invalid!", "an argument is invalid (errmsg names it)", _Arg),
    _E(76001, "rid not found", "openapi/rid/get: rid unknown", _Arg),
    _E(76002, "rid is error", "openapi/rid/get: rid empty or malformed", _Arg),
    _E(
        76003,
        "could not query this rid,no permission",
        "openapi/rid/get: the rid belongs to another account",
        _Arg,
    ),
    _E(76004, "rid time is error", "openapi/rid/get: rid older than 7 days", _Arg),
    _E(76021, "cgi_path not found, please check", "quota API: unknown cgi_path", _Arg),
    _E(
        76022,
        "could not use this cgi_path，no permission",
        "quota API: the token's account does not own this API, or it is a /sns/ API",
        _Arg,
    ),
    _E(85064, "template not found", "template not found", _Arg),
    _E(85066, "illegal prefix", "jump rule: bad link prefix", _Arg),
    _E(85068, "test url is not the sub prefix", "jump rule: debug_url not under the prefix", _Arg),
    _E(85069, "check confirm file fail", "jump rule: verification file check failed", _Arg),
    _E(85070, "prefix in black list", "jump rule: URL blacklisted", _Arg),
    _E(85071, "prefix added repeated", "jump rule: prefix already added", _Arg),
    _E(85072, "prefix owned by other", "jump rule: prefix owned by another account", _Arg),
    _E(
        85076,
        "",
        "jump rule: (undocumented) the link's domain is refused, reportedly its ICP filing",
        _Arg,
    ),
    _E(85095, "data abnormal, please delete and re-add", "jump rule: delete and re-add", _Arg),
    _E(85096, "not allow include scancode_time field", "wxacode: scancode_time reserved", _Arg),
    # -- Mini Program links (reference/links.md §2-§8) -----------------------------------------
    _E(
        44993,
        "reach max api day frequence limit",
        "more than 500,000 URL Schemes + URL Links generated today",
        _Quota,
    ),
    _E(
        85406,
        "daily visit limit",
        "today's opening quota of URL Schemes and URL Links is used up (query it with "
        "remaining_visits)",
        _Quota,
    ),
    _E(
        85400,
        "reach max long time quota limit",
        "the lifetime cap of 100,000 permanent Short Links is reached",
        _Quota,
        per_endpoint=MappingProxyType(
            dict.fromkeys(
                (_SCHEME, _URLLINK),
                "legacy cap of 100,000 long-lived links (seen in 2022 even on short-term requests)",
            )
        ),
    ),
    _E(
        85079,
        "miniprogram has no online release",
        "the Mini Program has no released version: links cannot be generated",
        _Perm,
        account_level=True,
    ),
    _E(85088, "no cloudbase", "cloud_base used but cloud development is not enabled", _Perm),
    _E(
        85405,
        "plaintext scheme not enabled",
        "appid or path not enabled for plaintext schemes (MP console → 明文Scheme拉起此小程序)",
        _Perm,
    ),
    _E(
        85407,
        "no scheme permission",
        "no permission to generate URL Schemes",
        _Perm,
        account_level=True,
    ),
    _E(85408, "appid banned", "this AppID is banned from links", _Perm, account_level=True),
    _E(
        43104,
        "this appid does not have permission",
        "Short Links are only for e-commerce categories (电商平台, 商家自营, 跨境电商)",
        _Perm,
        account_level=True,
    ),
    _E(
        9800007,
        "model_id has no capability",
        "NFC: the device model_id lacks the 'NFC opens Mini Program' capability",
        _Perm,
    ),
    _E(40165, "invalid weapp pagepath", "links: path is not a page of the released app", _Arg),
    _E(40212, "invalid query", "links: query not k1=v1&k2=v2 or has illegal characters", _Arg),
    _E(
        40225,
        "invalid page title",
        "Short Link: page_title refused (illegal content)",
        _Arg,
    ),
    _E(
        85401,
        "time limit between 1min and 30days",
        "links: expire_time must be 1 minute .. 30 days ahead (Unix seconds)",
        _Arg,
    ),
    _E(85402, "invalid env_version", "links: env_version not release/trial/develop", _Arg),
    _E(85403, "not found", "links: scheme or URL Link not found", _Arg),
    _E(9800003, "model_id check failed", "NFC: model_id check failed", _Arg),
    _E(9800008, "sn required", "NFC: a one-code-per-device model needs sn", _Arg),
    _E(9800009, "sn must be empty", "NFC: a one-code-per-model model must have an empty sn", _Arg),
    _E(9410010, "long_data too long", "shorten: long_data over 4 KB", _Arg),
    _E(9410011, "expire_seconds over limit", "shorten: expire_seconds over 2592000", _Arg),
    _E(
        9410012,
        "short_key not exist or expired",
        "shorten: short_key unknown, expired or another account's",
        _Arg,
    ),
)

#: errcodes after which the cached token is dropped and the call retried once with a new one.
#: Derived from the catalogue (its AccessTokenError rows), so the two cannot disagree.
TOKEN_ERRCODES: Final[frozenset[int]] = frozenset(
    row.code for row in CATALOGUE.values() if row.error is AccessTokenError
)

#: Token endpoints, on which 40001 means "wrong AppSecret", not "stale token".
_TOKEN_ENDPOINTS: Final[frozenset[str]] = frozenset({"cgi-bin/token", "cgi-bin/stable_token"})

_RID = re.compile(r"[,，;\s]*\brid:\s*(?P<rid>[0-9a-fA-F]{8}-[0-9a-fA-F]{8}-[0-9a-fA-F]{8})\s*$")
_HINT = re.compile(r"[,，;\s]*\bhint:\s*\[(?P<rid>[^\]\s]*)\]\s*$")


def parse_rid(errmsg: str) -> tuple[str, str | None]:
    """Split WeChat's ``errmsg`` into the message and its trailing request id.

    Handles the current ``"... rid: 617682e0-09059ac5-34a8e2ea"`` (also after a comma) and the
    older ``"... hint: [vJOTwa0300ha57]"`` formats.

    Returns:
        ``(message, rid)``; ``rid`` is ``None`` when the message carries none.
    """
    for pattern in (_RID, _HINT):
        match = pattern.search(errmsg)
        if match:
            return errmsg[: match.start()], match.group("rid") or None
    return errmsg, None


def error_for(errcode: int, errmsg: str, *, endpoint: str) -> APIError:
    """Build the exception for a non-zero ``errcode`` answer, as the catalogue says.

    Args:
        errcode: WeChat's errcode.
        errmsg: WeChat's errmsg, possibly ending in ``rid: ...``.
        endpoint: the API path that answered, e.g. ``"cgi-bin/qrcode/create"``.
    """
    message, rid = parse_rid(errmsg)
    entry = CATALOGUE.get(errcode)
    cls: type[APIError] = entry.error if entry else APIError
    if errcode == 40001 and endpoint in _TOKEN_ENDPOINTS:
        # On the token APIs 40001 means the AppSecret is wrong, not that a token went stale.
        cls = CredentialError
    return cls(errcode, message, rid=rid, endpoint=endpoint)
