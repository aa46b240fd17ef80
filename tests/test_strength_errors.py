"""rid parsing and exception details that no earlier test pinned down.

WeChat appends ``rid: xxxxxxxx-xxxxxxxx-xxxxxxxx`` (older answers: ``hint: [..]``) to ``errmsg``;
wxqr splits it off into ``.rid`` and keeps the rest of the message intact. Companion of
``tests/test_errors.py``.
"""

from __future__ import annotations

import pytest

import wxqr
from wxqr.errors import CATALOGUE, ErrorCode, error_for, parse_rid

RID = "617682e0-09059ac5-34a8e2ea"


@pytest.mark.parametrize(
    ("errmsg", "message", "rid"),
    [
        # A rid that is not at the end is not the trailer: the message stays whole.
        pytest.param(
            f"invalid args rid: {RID}, data format error",
            f"invalid args rid: {RID}, data format error",
            None,
            id="rid-mid-message",
        ),
        pytest.param(f"a rid: {RID} b rid: {RID}", f"a rid: {RID} b", RID, id="two-rids"),
        pytest.param(
            f"api unauthorized，rid: {RID}", "api unauthorized", RID, id="fullwidth-comma"
        ),
        pytest.param(
            f"api unauthorized， rid: {RID}", "api unauthorized", RID, id="fw-comma-space"
        ),
        pytest.param(f"api unauthorized; rid: {RID}", "api unauthorized", RID, id="semicolon"),
        pytest.param(f"data rid:{RID}", "data", RID, id="no-space-after-colon"),
        pytest.param(f"quota rid: {RID}  \n", "quota", RID, id="trailing-whitespace"),
        pytest.param(f"quota\trid: {RID}", "quota", RID, id="tab"),
        pytest.param(f"rid: {RID}", "", RID, id="rid-only"),
        pytest.param(f"grid: {RID}", f"grid: {RID}", None, id="not-a-rid-word"),
        pytest.param(f"x rid: {RID[:-1]}", f"x rid: {RID[:-1]}", None, id="short-rid"),
        pytest.param(f"x rid: {RID.upper()}", "x", RID.upper(), id="upper-hex"),
        pytest.param("invalid appid hint: []", "invalid appid", None, id="empty-hint-is-none"),
        pytest.param("invalid appid hint:[abc]", "invalid appid", "abc", id="hint-no-space"),
        pytest.param("invalid appid，hint: [abc] ", "invalid appid", "abc", id="hint-fw-comma"),
        pytest.param(
            "invalid hint: [abc] more", "invalid hint: [abc] more", None, id="hint-mid-message"
        ),
        pytest.param("invalid hint: [a b]", "invalid hint: [a b]", None, id="hint-with-space"),
        pytest.param("ok", "ok", None, id="nothing"),
        pytest.param("", "", None, id="empty"),
    ],
)
def test_parse_rid(errmsg, message, rid):
    assert parse_rid(errmsg) == (message, rid)


def test_an_empty_hint_gives_an_error_without_rid():
    exc = error_for(40013, "invalid appid hint: []", endpoint="cgi-bin/token")
    assert exc.rid is None
    assert exc.errmsg == "invalid appid"
    assert str(exc) == "cgi-bin/token: errcode 40013: invalid appid"


def test_a_mid_message_rid_keeps_the_whole_message_in_the_error():
    errmsg = f"invalid args rid: {RID}, see the docs"
    exc = error_for(47003, errmsg, endpoint="cgi-bin/qrcode/create")
    assert exc.errmsg == errmsg
    assert exc.rid is None
    assert str(exc) == f"cgi-bin/qrcode/create: errcode 47003: {errmsg}"


def test_the_rid_is_shown_once_in_the_message():
    exc = error_for(45009, f"reach max api daily quota limit，rid: {RID}", endpoint="wxa/x")
    assert str(exc) == f"wxa/x: errcode 45009: reach max api daily quota limit (rid: {RID})"


def test_meaning_is_per_endpoint_where_the_catalogue_says_so():
    row = ErrorCode(1, "e", "general", wxqr.APIError, per_endpoint={"wxa/a": "special"})
    assert row.meaning_for("wxa/a") == "special"
    assert row.meaning_for("wxa/b") == "general"
    assert ErrorCode(2, "e", "plain", wxqr.APIError).meaning_for("wxa/a") == "plain"


def test_an_explicit_retry_after_wins_over_the_catalogue():
    assert wxqr.RateLimitError(45011, "x", endpoint="e", retry_after=2.5).retry_after == 2.5
    assert wxqr.RateLimitError(45011, "x", endpoint="e").retry_after == 60.0
    assert wxqr.RateLimitError(12345, "x", endpoint="e").retry_after is None


# Built inside the test (not at collection) so that mutation testing sees the constructor run.
@pytest.mark.parametrize(
    ("make", "text"),
    [
        pytest.param(
            lambda: wxqr.ValidationError("width", "must be in 280..1280"),
            "width: must be in 280..1280",
            id="validation",
        ),
        pytest.param(lambda: wxqr.TransportError("boom"), "boom", id="transport-no-endpoint"),
        pytest.param(
            lambda: wxqr.TransportError("boom", endpoint="wxa/x"), "wxa/x: boom", id="transport"
        ),
        pytest.param(
            lambda: wxqr.HTTPStatusError(502, endpoint="wxa/x"), "wxa/x: HTTP 502", id="status"
        ),
        pytest.param(
            lambda: wxqr.HTTPStatusError(404, endpoint="wxa/x", detail="gone"),
            "wxa/x: HTTP 404 (gone)",
            id="status-detail",
        ),
        pytest.param(lambda: wxqr.ResponseDecodeError("bad"), "bad", id="decode-no-endpoint"),
        pytest.param(
            lambda: wxqr.ResponseDecodeError("bad", endpoint="wxa/x"), "wxa/x: bad", id="decode"
        ),
        pytest.param(
            lambda: wxqr.TicketNotFoundError(404, endpoint="cgi-bin/showqrcode"),
            "cgi-bin/showqrcode: HTTP 404",
            id="ticket",
        ),
    ],
)
def test_messages_name_the_endpoint_and_the_problem(make, text):
    exc = make()
    assert str(exc) == text
    assert exc.args == (text,)


def test_exception_attributes():
    assert wxqr.ValidationError("width", "x").argument == "width"
    assert wxqr.TransportError("x", endpoint="wxa/x").endpoint == "wxa/x"
    assert wxqr.TransportError("x").endpoint is None
    status = wxqr.HTTPStatusError(503, endpoint="wxa/x")
    assert (status.status_code, status.endpoint) == (503, "wxa/x")
    assert wxqr.ResponseDecodeError("x", endpoint="wxa/x").endpoint == "wxa/x"
    assert wxqr.ResponseDecodeError("x").endpoint is None


def test_the_catalogue_refuses_duplicate_rows():
    from wxqr.errors import _catalogue

    row = CATALOGUE[45009]
    assert len(CATALOGUE) == len({code for code in CATALOGUE})
    with pytest.raises(AssertionError) as info:
        _catalogue(row, row)
    assert str(info.value).splitlines()[0] == "duplicate errcode in the catalogue"


@pytest.mark.parametrize(
    ("declared", "endpoint", "text"),
    [
        pytest.param(
            3_000_000,
            "wxa/getwxacode",
            "wxa/getwxacode: answer over max_response_bytes=2,000,000: announces 3,000,000 bytes",
            id="announced",
        ),
        pytest.param(
            0,
            "wxa/getwxacode",
            "wxa/getwxacode: answer over max_response_bytes=2,000,000: announces 0 bytes",
            id="announced-zero",
        ),
        pytest.param(
            None, None, "answer over max_response_bytes=2,000,000: streamed past it", id="streamed"
        ),
    ],
)
def test_a_too_large_answer_says_the_cap_and_how_it_was_noticed(declared, endpoint, text):
    exc = wxqr.ResponseTooLargeError(2_000_000, endpoint=endpoint, declared=declared)
    assert str(exc) == text
    assert exc.args == (text,)
    assert (exc.limit, exc.endpoint) == (2_000_000, endpoint)
    assert isinstance(exc, wxqr.ResponseDecodeError)  # callers catching decode errors see it


def test_a_catalogue_built_from_plain_rows_gets_the_link_apis_meanings():
    from wxqr.errors import _LINK_MEANINGS, _catalogue

    own = "the row's own meaning on the Short Link API"
    rows = [
        ErrorCode(code, CATALOGUE[code].errmsg, f"general {code}", CATALOGUE[code].error)
        for code in _LINK_MEANINGS
        if code != 45009
    ]
    rows.append(
        ErrorCode(
            45009,
            "quota",
            "general 45009",
            wxqr.QuotaExceededError,
            per_endpoint={"wxa/genwxashortlink": own, "wxa/other": "other"},
        )
    )
    rows.append(ErrorCode(1, "plain", "general 1", wxqr.APIError))
    table = _catalogue(*rows)
    assert sorted(table) == sorted([1, *_LINK_MEANINGS])
    short = table[40066].meaning_for("wxa/genwxashortlink")
    assert short == "page_url is not a page of the released Mini Program"
    assert table[40066].meaning_for("cgi-bin/qrcode/create") == "general 40066"
    assert table[40013].meaning_for("wxa/generatescheme") == (
        "link generation is banned for this AppID"
    )
    assert table[45009].meaning_for("wxa/genwxashortlink") == own  # a row's own meaning wins
    assert table[45009].meaning_for("wxa/other") == "other"
    assert table[1].meaning_for("wxa/genwxashortlink") == "general 1"
    # Rebuilding the catalogue from its own rows changes nothing.
    assert _catalogue(*CATALOGUE.values()) == CATALOGUE
