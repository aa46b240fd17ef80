"""The public surface: what ``import wxqr`` offers is pinned here; changing it is a decision."""

from __future__ import annotations

import importlib
import inspect
from importlib.resources import files

import pytest

import wxqr
import wxqr.caches
import wxqr.errors
from wxqr.resources import OpenApi, QrCode, QrCodeJump, Shorten, WxaCode

PUBLIC = [
    "DEFAULT_RATE_LIMITS",
    "APIError",
    "AccessTokenError",
    "AdminConfirmationError",
    "ApiQuota",
    "CachedToken",
    "CallbackCheck",
    "CallbackDns",
    "CallbackPing",
    "Client",
    "CloudBase",
    "CredentialError",
    "EnvVersion",
    "HTTPStatusError",
    "Image",
    "ImageKind",
    "InvalidRequestError",
    "MemoryRateLimiter",
    "MemoryTokenCache",
    "PermissionDeniedError",
    "QrJumpFile",
    "QrJumpRule",
    "QrJumpRules",
    "QrTicket",
    "QuotaExceededError",
    "RateLimit",
    "RateLimitError",
    "RateLimiter",
    "RateWindow",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RidInfo",
    "Scheme",
    "SchemeInfo",
    "ShortenData",
    "SystemBusyError",
    "TicketNotFoundError",
    "TokenCache",
    "TokenCacheError",
    "TokenProvider",
    "TransportError",
    "UrlLink",
    "UrlLinkInfo",
    "ValidationError",
    "WxqrError",
    "__version__",
    "image_kind",
]


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then everything else.
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_pinned():
    assert wxqr.__all__ == PUBLIC


def test_all_is_sorted_and_unique():
    assert sorted(wxqr.__all__, key=_isort_key) == wxqr.__all__
    assert len(set(wxqr.__all__)) == len(wxqr.__all__)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_importable(name):
    namespace = {}
    exec(f"from wxqr import {name}", namespace)
    assert namespace[name] is getattr(wxqr, name)


@pytest.mark.parametrize(
    "module",
    [
        pytest.param("wxqr.errors", id="errors"),
        pytest.param("wxqr.caches", id="caches"),
        pytest.param("wxqr.events", id="events"),
    ],
)
def test_public_submodules_export_what_they_list(module):
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


def test_every_exception_is_re_exported_from_wxqr():
    exceptions = {
        name
        for name in wxqr.errors.__all__
        if inspect.isclass(getattr(wxqr.errors, name))
        and issubclass(getattr(wxqr.errors, name), BaseException)
    }
    assert exceptions <= set(wxqr.__all__)


def test_validation_error_is_a_value_error():
    assert issubclass(wxqr.ValidationError, ValueError)
    assert issubclass(wxqr.ValidationError, wxqr.WxqrError)


def test_the_package_is_typed():
    assert files("wxqr").joinpath("py.typed").is_file()


def test_version_is_a_string():
    assert isinstance(wxqr.__version__, str)
    assert wxqr.__version__.count(".") >= 2


RESOURCE_METHODS = [
    pytest.param(cls, name, id=f"{cls.__name__}.{name}")
    for cls in (QrCode, Shorten, QrCodeJump, WxaCode, OpenApi)
    for name, member in vars(cls).items()
    if not name.startswith("_") and inspect.iscoroutinefunction(member)
]


@pytest.mark.parametrize(("cls", "name"), RESOURCE_METHODS)
def test_endpoint_methods_take_a_keyword_only_timeout(cls, name):
    parameter = inspect.signature(getattr(cls, name)).parameters.get("timeout")
    assert parameter is not None
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is None


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        *RESOURCE_METHODS,
        pytest.param(QrCode, "show_url", id="QrCode.show_url"),
        pytest.param(wxqr.Client, "access_token", id="Client.access_token"),
        pytest.param(wxqr.Client, "aclose", id="Client.aclose"),
        pytest.param(wxqr.Client, "forced_refreshes", id="Client.forced_refreshes"),
    ],
)
def test_public_methods_are_documented(cls, name):
    assert (inspect.getdoc(getattr(cls, name)) or "").strip()


def test_the_client_has_every_resource():
    client = wxqr.Client("wx1a2b3c4d5e6f7a8b", "secret")
    assert isinstance(client.qrcode, QrCode)
    assert isinstance(client.shorten, Shorten)
    assert isinstance(client.qrcode_jump, QrCodeJump)
    assert isinstance(client.wxacode, WxaCode)
    assert isinstance(client.openapi, OpenApi)


def test_help_of_client_lists_every_resource_group():
    import pydoc
    from functools import cached_property

    text = pydoc.render_doc(wxqr.Client, renderer=pydoc.plaintext)
    resources = [n for n, m in vars(wxqr.Client).items() if isinstance(m, cached_property)]
    assert {"qrcode", "shorten", "qrcode_jump", "wxacode"} <= set(resources)
    listed = text.split("Resources:", 1)[1].split("Methods defined here", 1)[0]
    for name in resources:
        summary = getattr(wxqr.Client, name).__doc__.strip().splitlines()[0]
        assert f"{name}: {summary}" in listed, name


def test_image_kind_and_env_version_are_literal_types():
    import typing

    assert typing.get_args(wxqr.ImageKind) == ("png", "jpeg", "gif")
    assert typing.get_args(wxqr.EnvVersion) == ("release", "trial", "develop")
    assert typing.get_type_hints(wxqr.image_kind)["return"] == wxqr.ImageKind | None
    for method in (WxaCode.get, WxaCode.get_unlimited):
        assert typing.get_type_hints(method)["env_version"] == wxqr.EnvVersion
