"""Frozen result models. They carry no (de)serialisation rules: ``wxqr._converter`` does."""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["EnvVersion", "QrJumpFile", "QrJumpRule", "QrJumpRules", "QrTicket", "ShortenData"]

#: The Mini Program version a wxacode opens: ``"release"``, ``"trial"`` or ``"develop"``.
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
