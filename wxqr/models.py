"""Frozen result models. They carry no (de)serialisation rules: ``wxqr._converter`` does."""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = [
    "CloudBase",
    "EnvVersion",
    "QrJumpFile",
    "QrJumpRule",
    "QrJumpRules",
    "QrTicket",
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
