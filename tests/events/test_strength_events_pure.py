"""Signature, crypto, parsing and refusal errors at their exact edges (issue 17: every mutant of
``wxqr/events/_signature.py``, ``_crypto.py``, ``_parse.py`` and ``_errors.py`` that changes
behaviour is caught here or in ``test_events_pure.py``)."""

from __future__ import annotations

import pytest
from events_helpers import GET_VECTOR, TOKEN

import wxqr
from wxqr import events

pytest.importorskip("cryptography")


def check(token=TOKEN, **change):
    vector = {**GET_VECTOR, **change}
    return events.check_signature(
        token, timestamp=vector["timestamp"], nonce=vector["nonce"], signature=vector["signature"]
    )


# -- check_signature ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
        pytest.param(b"AAAAA", id="bytes"),
    ],
)
def test_a_token_that_is_not_a_non_empty_str_is_a_validation_error(token):
    with pytest.raises(wxqr.ValidationError) as caught:
        check(token)
    assert caught.value.argument == "token"
    assert str(caught.value) == "token: must be a non-empty string (the push Token)"


@pytest.mark.parametrize("part", ["timestamp", "nonce", "signature"])
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(["x"], id="list"),
        pytest.param(None, id="none"),
        pytest.param(b"x", id="bytes"),
    ],
)
def test_a_part_that_is_not_a_str_never_matches(part, value):
    assert check(**{part: value}) is False
    if part == "signature":  # even the bytes of the right signature
        assert check(signature=GET_VECTOR["signature"].encode()) is False


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("\ud800" * 40, id="lone-surrogates"),
        pytest.param(GET_VECTOR["signature"][:-1] + "\udcff", id="surrogate-escaped-byte"),
    ],
)
def test_a_signature_that_cannot_be_encoded_is_a_mismatch_not_a_crash(signature):
    # A framework decoding the query with surrogateescape hands such strings over.
    assert check(signature=signature) is False


def test_the_right_signature_is_true_exactly():
    assert check() is True


# -- refusal errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "code", "status"),
    [
        pytest.param(events.ReceiveError, -40000, 400, id="base"),
        pytest.param(events.SignatureError, -40001, 403, id="signature"),
        pytest.param(events.MalformedMessage, -40002, 400, id="malformed"),
        pytest.param(events.AppIdMismatch, -40005, 400, id="appid"),
        pytest.param(events.DecryptError, -40007, 400, id="decrypt"),
    ],
)
def test_refusals_carry_their_code_in_the_message(cls, code, status):
    error = cls("the check failed")
    assert (error.code, error.status) == (code, status)
    assert str(error) == f"the check failed (code {code})"
    assert error.args == (f"the check failed (code {code})",)
    other = cls("the check failed", code=-40010, status=413)
    assert (other.code, other.status, str(other)) == (-40010, 413, "the check failed (code -40010)")
