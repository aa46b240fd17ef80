"""The errcode catalogue, the exception tree and what an APIError carries."""

from __future__ import annotations

import pickle

import pytest
from mockwechat import FakeWeChat, error, fixture

import wxqr
from wxqr.errors import CATALOGUE, TOKEN_ERRCODES, error_for, parse_rid

RID = "617682e0-09059ac5-34a8e2ea"


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split()[:4])


# -- one case per catalogue row --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param(code, row.error, id=f"{code}-{_slug(row.errmsg)}")
        for code, row in sorted(CATALOGUE.items())
    ],
)
def test_every_catalogue_row_raises_its_class(code, expected):
    exc = error_for(code, f"{CATALOGUE[code].errmsg} rid: {RID}", endpoint="cgi-bin/qrcode/create")

    assert type(exc) is expected
    assert isinstance(exc, wxqr.APIError)
    assert exc.errcode == code
    assert exc.errmsg == CATALOGUE[code].errmsg
    assert exc.rid == RID
    assert exc.endpoint == "cgi-bin/qrcode/create"
    assert exc.retryable is CATALOGUE[code].retryable
    assert exc.meaning == CATALOGUE[code].meaning


# -- a hand-written parity table: if the catalogue drifts, this disagrees ---------------------

PARITY = [
    (-1, wxqr.SystemBusyError, "system-busy"),
    (886001, wxqr.SystemBusyError, "qrcodejump-busy"),
    (40001, wxqr.AccessTokenError, "token-invalid"),
    (40014, wxqr.AccessTokenError, "token-malformed"),
    (42001, wxqr.AccessTokenError, "token-expired"),
    (40125, wxqr.CredentialError, "invalid-appsecret"),
    (40164, wxqr.CredentialError, "ip-not-whitelisted"),
    (40243, wxqr.CredentialError, "appsecret-frozen"),
    (44990, wxqr.RateLimitError, "per-second-limit"),
    (45011, wxqr.RateLimitError, "per-minute-limit"),
    (45009, wxqr.QuotaExceededError, "daily-quota"),
    (45029, wxqr.QuotaExceededError, "qrcode-count"),
    (886000, wxqr.QuotaExceededError, "publish-quota"),
    (48006, wxqr.QuotaExceededError, "clear-quota-limit"),
    (48001, wxqr.PermissionDeniedError, "api-unauthorized"),
    (85074, wxqr.PermissionDeniedError, "not-published"),
    (85075, wxqr.PermissionDeniedError, "personal-mini-program"),
    *[(code, wxqr.AdminConfirmationError, "admin-confirmation") for code in range(89501, 89508)],
    (40053, wxqr.InvalidRequestError, "invalid-action-info"),
    (40159, wxqr.InvalidRequestError, "invalid-path"),
    (9410012, wxqr.InvalidRequestError, "short-key-missing"),
]


@pytest.mark.parametrize(
    ("code", "expected"),
    [pytest.param(code, cls, id=f"{code}-{name}") for code, cls, name in PARITY],
)
def test_parity_with_the_documented_classification(code, expected):
    assert code in CATALOGUE
    assert type(error_for(code, "x", endpoint="wxa/getwxacode")) is expected


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        pytest.param(-1, True, id="-1-busy-retryable"),
        pytest.param(886001, True, id="886001-busy-retryable"),
        pytest.param(44990, True, id="44990-wait-and-retry"),
        pytest.param(45011, True, id="45011-wait-and-retry"),
        pytest.param(45009, False, id="45009-daily-quota-never-retried"),
        pytest.param(40001, False, id="40001-token-handled-separately"),
        pytest.param(40053, False, id="40053-bad-argument"),
    ],
)
def test_which_errcodes_are_retryable(code, retryable):
    assert CATALOGUE[code].retryable is retryable


def test_token_errcodes_are_the_access_token_rows():
    assert {c for c, row in CATALOGUE.items() if row.error is wxqr.AccessTokenError} == set(
        TOKEN_ERRCODES
    )
    assert {40001, 40014, 42001} == TOKEN_ERRCODES


@pytest.mark.parametrize(
    ("code", "retry_after"),
    [pytest.param(44990, 1.0, id="44990-one-second"), pytest.param(45011, 60.0, id="45011-minute")],
)
def test_rate_limit_errors_say_when_to_retry(code, retry_after):
    exc = error_for(code, "slow down", endpoint="cgi-bin/wxopen/qrcodejumpadd")
    assert isinstance(exc, wxqr.RateLimitError)
    assert exc.retry_after == retry_after


def test_unknown_errcode_is_a_plain_api_error():
    exc = error_for(99999, f"something new rid: {RID}", endpoint="cgi-bin/shorten/gen")

    assert type(exc) is wxqr.APIError
    assert (exc.errcode, exc.errmsg, exc.rid, exc.endpoint) == (
        99999,
        "something new",
        RID,
        "cgi-bin/shorten/gen",
    )
    assert exc.retryable is False
    assert exc.meaning is None
    assert str(exc) == f"cgi-bin/shorten/gen: errcode 99999: something new (rid: {RID})"


# -- rid parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errmsg", "message", "rid"),
    [
        pytest.param(
            "reach max api daily quota limit rid: 617682e0-09059ac5-34a8e2ea",
            "reach max api daily quota limit",
            RID,
            id="space-rid",
        ),
        pytest.param(
            "api unauthorized, rid: 617682e0-09059ac5-34a8e2ea",
            "api unauthorized",
            RID,
            id="comma-rid",
        ),
        pytest.param(
            "invalid appid hint: [vJOTwa0300ha57]", "invalid appid", "vJOTwa0300ha57", id="old-hint"
        ),
        pytest.param("invalid args", "invalid args", None, id="no-rid"),
        pytest.param("", "", None, id="empty"),
    ],
)
def test_parse_rid(errmsg, message, rid):
    assert parse_rid(errmsg) == (message, rid)


@pytest.mark.parametrize(
    ("name", "expected", "rid"),
    [
        pytest.param("error_45009", wxqr.QuotaExceededError, RID, id="45009-doc-example"),
        pytest.param("error_48001", wxqr.PermissionDeniedError, RID, id="48001-comma-rid"),
        pytest.param("error_40164", wxqr.CredentialError, RID, id="40164-ip-whitelist"),
        pytest.param("error_40013_hint", wxqr.CredentialError, "vJOTwa0300ha57", id="40013-hint"),
    ],
)
def test_documented_error_bodies(name, expected, rid):
    body = fixture(name)
    exc = error_for(body["errcode"], body["errmsg"], endpoint="cgi-bin/token")
    assert type(exc) is expected
    assert exc.rid == rid
    assert "rid:" not in exc.errmsg
    assert "hint:" not in exc.errmsg


# -- 40001 means different things on the token API and elsewhere ------------------------------


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        pytest.param("cgi-bin/token", wxqr.CredentialError, id="classic-token-wrong-secret"),
        pytest.param("cgi-bin/stable_token", wxqr.CredentialError, id="stable-token-wrong-secret"),
        pytest.param("cgi-bin/qrcode/create", wxqr.AccessTokenError, id="api-stale-token"),
    ],
)
def test_40001_on_the_token_endpoint_is_a_credential_error(endpoint, expected):
    assert type(error_for(40001, "invalid credential", endpoint=endpoint)) is expected


@pytest.mark.anyio
async def test_a_wrong_secret_surfaces_as_credential_error():
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/stable_token", error(40001, "invalid credential"))
    async with fake.client() as wx:
        with pytest.raises(wxqr.CredentialError) as info:
            await wx.access_token()
    assert info.value.endpoint == "cgi-bin/stable_token"
    assert len(fake.token_requests) == 1  # not "refreshed and retried": the secret is wrong


# -- the tree ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        pytest.param(wxqr.ValidationError, ValueError, id="validation-is-valueerror"),
        pytest.param(wxqr.ValidationError, wxqr.WxqrError, id="validation"),
        pytest.param(wxqr.TransportError, wxqr.WxqrError, id="transport"),
        pytest.param(wxqr.HTTPStatusError, wxqr.WxqrError, id="http-status"),
        pytest.param(wxqr.TicketNotFoundError, wxqr.HTTPStatusError, id="ticket-not-found"),
        pytest.param(wxqr.ResponseDecodeError, wxqr.WxqrError, id="decode"),
        pytest.param(wxqr.TokenCacheError, wxqr.WxqrError, id="token-cache"),
        pytest.param(wxqr.APIError, wxqr.WxqrError, id="api"),
        *[
            pytest.param(cls, wxqr.APIError, id=cls.__name__)
            for cls in (
                wxqr.SystemBusyError,
                wxqr.AccessTokenError,
                wxqr.CredentialError,
                wxqr.RateLimitError,
                wxqr.QuotaExceededError,
                wxqr.PermissionDeniedError,
                wxqr.AdminConfirmationError,
                wxqr.InvalidRequestError,
            )
        ],
    ],
)
def test_exception_tree(cls, base):
    assert issubclass(cls, base)


# -- pickling (exceptions cross process pools in batch jobs) ------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(error_for(45009, f"quota rid: {RID}", endpoint="wxa/getwxacode"), id="quota"),
        pytest.param(error_for(12345, "new", endpoint="wxa/getwxacode"), id="unknown-code"),
        pytest.param(error_for(40001, "stale", endpoint="wxa/getwxacode"), id="access-token"),
        pytest.param(error_for(44990, "fast", endpoint="cgi-bin/wxopen/qrcodejumpadd"), id="rate"),
    ],
)
def test_api_errors_survive_pickling(exc):
    copy = pickle.loads(pickle.dumps(exc))

    assert type(copy) is type(exc)
    assert (copy.errcode, copy.errmsg, copy.rid, copy.endpoint) == (
        exc.errcode,
        exc.errmsg,
        exc.rid,
        exc.endpoint,
    )
    assert str(copy) == str(exc)
    assert getattr(copy, "retry_after", None) == getattr(exc, "retry_after", None)


def test_rate_limit_error_keeps_an_explicit_retry_after_through_pickling():
    exc = wxqr.RateLimitError(45011, "slow", endpoint="wxa/getwxacodeunlimit", retry_after=5.0)
    assert pickle.loads(pickle.dumps(exc)).retry_after == 5.0


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(wxqr.ValidationError("width", "must be in 280..1280"), id="validation"),
        pytest.param(
            wxqr.TransportError("ConnectError", endpoint="wxa/getwxacode"), id="transport"
        ),
        pytest.param(wxqr.HTTPStatusError(502, endpoint="wxa/getwxacode"), id="http-status"),
        pytest.param(
            wxqr.TicketNotFoundError(404, endpoint="cgi-bin/showqrcode"), id="ticket-not-found"
        ),
        pytest.param(wxqr.ResponseDecodeError("HTML", endpoint="wxa/getwxacode"), id="decode"),
    ],
)
def test_other_errors_survive_pickling(exc):
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert str(copy) == str(exc)
    for attribute in ("argument", "endpoint", "status_code"):
        assert getattr(copy, attribute, None) == getattr(exc, attribute, None), attribute


@pytest.mark.parametrize(
    ("errcode", "endpoint", "expected"),
    [
        pytest.param(40013, "cgi-bin/qrcode/create", True, id="40013-invalid-appid"),
        pytest.param(40125, "cgi-bin/stable_token", True, id="40125-invalid-secret"),
        pytest.param(40164, "cgi-bin/token", True, id="40164-ip-whitelist"),
        pytest.param(40243, "cgi-bin/stable_token", True, id="40243-frozen-secret"),
        pytest.param(40001, "cgi-bin/stable_token", True, id="40001-on-token-api"),
        pytest.param(40001, "cgi-bin/qrcode/create", False, id="40001-stale-token"),
        pytest.param(45009, "cgi-bin/qrcode/create", False, id="45009-quota"),
        pytest.param(-1, "cgi-bin/qrcode/create", False, id="busy"),
        pytest.param(12345678, "cgi-bin/qrcode/create", False, id="unknown"),
    ],
)
def test_account_level_errors_are_marked(errcode, endpoint, expected):
    from wxqr.errors import error_for

    assert error_for(errcode, "x", endpoint=endpoint).account_level is expected
