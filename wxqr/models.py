"""Frozen result models. They carry no (de)serialisation rules: ``wxqr._converter`` does."""

from __future__ import annotations

import re
from typing import Literal

import attrs

__all__ = [
    "ApiQuota",
    "CallbackCheck",
    "CallbackDns",
    "CallbackPing",
    "CloudBase",
    "EnvVersion",
    "QrJumpFile",
    "QrJumpRule",
    "QrJumpRules",
    "QrTicket",
    "RateWindow",
    "RidInfo",
    "Scheme",
    "SchemeInfo",
    "ShortenData",
    "UrlLink",
    "UrlLinkInfo",
]

#: The Mini Program version a code or link opens: ``"release"``, ``"trial"`` or ``"develop"``.
EnvVersion = Literal["release", "trial", "develop"]


@attrs.frozen
class QrTicket:
    """A parametric QR code created by ``qrcode/create``.

    Attributes:
        ticket: exchange it for the image with :meth:`wxqr.resources.QrCode.show`.
        url: the content of the QR image (render your own image from it if you like).
        expire_seconds: lifetime of a temporary code; ``None`` for permanent codes.
    """

    ticket: str
    url: str
    expire_seconds: int | None = None


@attrs.frozen
class ShortenData:
    """What ``shorten/fetch`` returns for a short key.

    Attributes:
        long_data: the original data.
        create_time: Unix time of creation.
        expire_seconds: seconds *remaining* until the key expires.
    """

    long_data: str
    create_time: int
    expire_seconds: int


@attrs.frozen
class QrJumpRule:
    """One "scan an ordinary link QR code to open the Mini Program" rule.

    Service-account rules only carry ``prefix``, ``path`` and ``state``.

    Attributes:
        prefix: the link prefix the rule matches.
        path: the Mini Program page opened.
        state: 1 = not published, 2 = published.
        permit_sub_rule: 1 = don't occupy sub-rules, 2 = occupy them (ordinary rules).
        open_version: 1 develop, 2 trial, 3 release (ordinary rules).
        debug_url: up to 5 test links (ordinary rules).
    """

    prefix: str
    path: str = ""
    state: int | None = None
    permit_sub_rule: int | None = None
    open_version: int | None = None
    debug_url: tuple[str, ...] = ()


@attrs.frozen
class QrJumpRules:
    """The answer of ``qrcodejumpget``.

    Attributes:
        rule_list: the rules.
        qrcodejump_open: whether the feature is switched on for the Mini Program.
        qrcodejump_pub_quota: publishes left this month.
        list_size: number of rules in ``rule_list``.
        total_count: total number of rules (for paging, service-account form).
    """

    rule_list: tuple[QrJumpRule, ...] = ()
    qrcodejump_open: int | None = None
    qrcodejump_pub_quota: int | None = None
    list_size: int | None = None
    total_count: int | None = None


@attrs.frozen
class QrJumpFile:
    """The verification file ``qrcodejumpdownload`` asks you to host under the prefix."""

    file_name: str
    file_content: str


# openapi -----------------------------------------------------------------------------------------


@attrs.frozen
class RateWindow:
    """A rate limit: at most ``call_count`` calls every ``refresh_second`` seconds."""

    call_count: int
    refresh_second: int


@attrs.frozen
class ApiQuota:
    """What ``openapi/quota/get`` reports for one API of the account.

    Attributes:
        daily_limit: calls allowed a day (0 where WeChat reports none).
        used: calls made today.
        remain: calls left today.
        rate_limit: the normal call-rate limit, if reported.
        component_rate_limit: the limit when a third-party platform calls, if reported.
    """

    daily_limit: int
    used: int
    remain: int
    rate_limit: RateWindow | None = None
    component_rate_limit: RateWindow | None = None


_SECRET_VALUE = re.compile(
    r"""((?:access_token|appsecret|secret)(?:=|\\?"\s*:\s*\\?"))[^&\s"\\]+""", re.IGNORECASE
)


def _masked(text: str) -> str:
    return repr(_SECRET_VALUE.sub(r"\1***", text))


@attrs.frozen
class RidInfo:
    """What ``openapi/rid/get`` recorded about one request (kept by WeChat for 7 days).

    **Sensitive**: ``request_url`` is the request's query string and contains the access token
    that was used (``access_token=...``); ``request_body`` is the body as sent (for a token
    fetch, the AppSecret). Do not log them. ``repr`` masks tokens and secrets in both.

    Attributes:
        invoke_time: Unix time of the request.
        cost_in_ms: how long WeChat took.
        request_url: the query string (sensitive, see above).
        request_body: the request body.
        response_body: WeChat's answer (the error JSON with its ``rid``).
        client_ip: the caller's IP as WeChat saw it.
    """

    invoke_time: int
    cost_in_ms: int
    request_url: str = attrs.field(repr=_masked)
    request_body: str = attrs.field(repr=_masked)
    response_body: str
    client_ip: str


@attrs.frozen
class CallbackDns:
    """One address WeChat resolved the callback URL's host to (``callback/check``)."""

    ip: str
    real_operator: str = ""


@attrs.frozen
class CallbackPing:
    """One ping WeChat sent to a callback address (``callback/check``).

    Attributes:
        ip: the address pinged.
        from_operator: the network WeChat pinged from (``CHINANET``, ``UNICOM``, ``CAP``).
        package_loss: ``"0%"`` or ``"100%"`` (one packet is sent).
        time: the round-trip time as WeChat prints it, e.g. ``"23.079ms"``.
    """

    ip: str
    from_operator: str = ""
    package_loss: str = ""
    time: str = ""


@attrs.frozen
class CallbackCheck:
    """The answer of ``callback/check``: DNS results and pings of the callback URL."""

    dns: tuple[CallbackDns, ...] = ()
    ping: tuple[CallbackPing, ...] = ()


# links ------------------------------------------------------------------------------------------


@attrs.frozen
class Scheme:
    """An encrypted URL Scheme from ``generatescheme`` or ``generatenfcscheme``.

    Attributes:
        openlink: ``weixin://dl/business/?t=TICKET``; append ``&cq=...`` (≤ 256 chars,
            url-encoded) for a per-use parameter.
    """

    openlink: str


@attrs.frozen
class UrlLink:
    """An encrypted URL Link from ``generate_urllink``.

    Attributes:
        url_link: ``https://wxaurl.cn/TICKET``; append ``?cq=...`` for a per-use parameter.
    """

    url_link: str


@attrs.frozen
class CloudBase:
    """A cloud-development static H5 page used as a URL Link's interstitial page.

    Pass one as ``cloud_base`` to :meth:`wxqr.resources.Links.generate_url_link`;
    :class:`UrlLinkInfo` reports it back.

    Attributes:
        env: the cloud environment (required in a request).
        domain: the static site's domain (WeChat's example answer spells it ``doamin``; both
            spellings are read).
        path: the H5 page path, without a query.
        query: the H5 page query, ≤ 1024 characters.
        resource_appid: for third-party batch cloud development.
    """

    env: str = ""
    domain: str = ""
    path: str = ""
    query: str = ""
    resource_appid: str = ""


@attrs.frozen
class SchemeInfo:
    """What ``queryscheme`` reports about a URL Scheme.

    Attributes:
        appid: the Mini Program.
        path: the page it opens (``""`` = home page).
        query: its query (a ``cq`` parameter shows here as ``a=hello``).
        create_time: Unix seconds; ``None`` for plaintext schemes (not reported).
        expire_time: Unix seconds; ``0`` = permanent; ``None`` when not reported.
        env_version: ``release``, ``trial`` or ``develop``.
    """

    appid: str = ""
    path: str = ""
    query: str = ""
    create_time: int | None = None
    expire_time: int | None = None
    env_version: str = "release"


@attrs.frozen
class UrlLinkInfo:
    """What ``query_urllink`` reports about a URL Link.

    Attributes:
        appid, path, query, create_time, expire_time, env_version: as in :class:`SchemeInfo`.
        cloud_base: the interstitial H5 page, if the link was made with one.
    """

    appid: str = ""
    path: str = ""
    query: str = ""
    create_time: int | None = None
    expire_time: int | None = None
    env_version: str = "release"
    cloud_base: CloudBase | None = None
