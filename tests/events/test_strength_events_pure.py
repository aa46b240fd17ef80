"""Signature, crypto, parsing and refusal errors at their exact edges (issue 17: every mutant of
``wxqr/events/_signature.py``, ``_crypto.py``, ``_parse.py`` and ``_errors.py`` that changes
behaviour is caught here or in ``test_events_pure.py``)."""

from __future__ import annotations

import base64
import secrets
import struct
import time

import pytest
from events_helpers import (
    ACCOUNT,
    APPID,
    GET_VECTOR,
    KEY,
    OPENID,
    REPLY_VECTOR,
    SAFE_ENCRYPT,
    SAFE_QUERY,
    TOKEN,
    event_json,
    event_xml,
    sha1_sorted,
    signed_query,
)

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


# -- MessageCrypto: construction ------------------------------------------------------------------
def crypto() -> events.MessageCrypto:
    return events.MessageCrypto(TOKEN, KEY, APPID)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("", KEY, APPID), "token: must be a non-empty string", id="empty-token"),
        pytest.param((None, KEY, APPID), "token: must be a non-empty string", id="none-token"),
        pytest.param((TOKEN, KEY, ""),
                     "appid: must be a non-empty string (the account's AppID)", id="empty-appid"),
        pytest.param((TOKEN, KEY, b"wx"),
                     "appid: must be a non-empty string (the account's AppID)", id="bytes-appid"),
        pytest.param((TOKEN, "A" * 44, APPID),
                     "encoding_aes_key: must be 43 characters from A-Z, a-z, 0-9", id="long-key"),
        pytest.param((TOKEN, None, APPID),
                     "encoding_aes_key: must be 43 characters from A-Z, a-z, 0-9", id="no-key"),
    ],
)  # fmt: skip
def test_construction_refusals_say_what_is_wrong(args, message):
    with pytest.raises(wxqr.ValidationError) as caught:
        events.MessageCrypto(*args)
    assert str(caught.value) == message


def test_a_non_ascii_appid_is_compared_as_utf8():
    c = events.MessageCrypto(TOKEN, KEY, "wx应用")
    sealed = c.encrypt("hi", nonce="n", timestamp=1)
    assert c.decrypt(sealed.encrypt, msg_signature=sealed.msg_signature, timestamp="1",
                     nonce="n") == "hi"  # fmt: skip
    assert repr(c) == "MessageCrypto(appid='wx应用')"


# -- MessageCrypto.decrypt ------------------------------------------------------------------------
def seal_raw(padded: bytes, *, timestamp: str = "1", nonce: str = "n") -> tuple[str, str]:
    """Encrypt already padded bytes with the official key (all-zero, IV zero) and sign them."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(KEY + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    text = base64.b64encode(enc.update(padded) + enc.finalize()).decode()
    return text, sha1_sorted(TOKEN, timestamp, nonce, text)


def padded(frame: bytes) -> bytes:
    pad = 32 - len(frame) % 32
    return frame + bytes([pad]) * pad


def frame(msg: bytes = b"hi", *, appid: bytes = APPID.encode(), declared: int | None = None):
    length = len(msg) if declared is None else declared
    return b"r" * 16 + struct.pack(">I", length) + msg + appid


def decrypt_raw(padded_bytes: bytes) -> str:
    text, signature = seal_raw(padded_bytes)
    return crypto().decrypt(text, msg_signature=signature, timestamp="1", nonce="n")


@pytest.mark.parametrize(
    ("padded_bytes", "error", "message"),
    [
        pytest.param(padded(frame(b"hi", appid=b"wx0000000000000000")), events.AppIdMismatch,
                     "the decrypted frame names another appid (code -40005)", id="other-appid"),
        pytest.param(padded(frame(b"\xff")), events.DecryptError,
                     "message is not UTF-8 (code -40008)", id="not-utf8"),
        pytest.param(frame(b"hi") + b"\x00" * 24, events.DecryptError,
                     "bad PKCS#7 padding (wrong key?) (code -40008)", id="pad-0"),
        pytest.param(b"r" * 19 + b"\x0d" * 13, events.DecryptError,
                     "frame shorter than its header (code -40008)", id="19-byte-frame"),
        pytest.param(padded(frame(b"hi", declared=3 + len(APPID))), events.DecryptError,
                     "msg_len exceeds the frame (code -40008)", id="msg-len-one-past"),
        # msg_len is unsigned: 0x80000000 and 0xFFFFFFFF are huge, never negative.
        pytest.param(padded(frame(b"hi", declared=0x80000000)), events.DecryptError,
                     "msg_len exceeds the frame (code -40008)", id="msg-len-2**31"),
        pytest.param(padded(frame(b"hi", declared=0xFFFFFFFF)), events.DecryptError,
                     "msg_len exceeds the frame (code -40008)", id="msg-len-2**32-1"),
    ],
)  # fmt: skip
def test_frame_refusals_say_which_check_failed(padded_bytes, error, message):
    assert len(padded_bytes) % 32 == 0
    with pytest.raises(error) as caught:
        decrypt_raw(padded_bytes)
    assert str(caught.value) == message


def test_a_frame_of_exactly_the_header_is_checked_for_its_appid():
    # 16 random + msg_len 0, no message and no appid: long enough, but names no appid.
    with pytest.raises(events.AppIdMismatch):
        decrypt_raw(padded(frame(b"", appid=b"")))
    assert decrypt_raw(padded(frame(b""))) == ""  # the same header with our appid: empty message


@pytest.mark.parametrize(
    ("encrypt", "error", "message"),
    [
        pytest.param("not base64!", events.DecryptError, "Encrypt is not base64 (code -40010)",
                     id="not-base64"),
        pytest.param("ЖЖЖЖ", events.DecryptError, "Encrypt is not base64 (code -40010)",
                     id="non-ascii"),
        # Junk a lenient decoder would skip: the field is refused, not repaired.
        pytest.param(SAFE_ENCRYPT[:40] + "\n" + SAFE_ENCRYPT[40:], events.DecryptError,
                     "Encrypt is not base64 (code -40010)", id="newline-inside"),
        pytest.param(SAFE_ENCRYPT[:40] + "*" + SAFE_ENCRYPT[40:], events.DecryptError,
                     "Encrypt is not base64 (code -40010)", id="star-inside"),
        pytest.param(base64.b64encode(b"x" * 48).decode(), events.DecryptError,
                     "ciphertext is not a whole number of 32-byte blocks (code -40007)",
                     id="one-and-a-half-blocks"),
    ],
)  # fmt: skip
def test_ciphertext_refusals_say_which_check_failed(encrypt, error, message):
    with pytest.raises(error) as caught:
        crypto().decrypt(encrypt, msg_signature=sha1_sorted(TOKEN, "1", "n", encrypt),
                         timestamp="1", nonce="n")  # fmt: skip
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "msg_signature",
    [
        pytest.param(SAFE_QUERY["signature"], id="plain-signature"),
        pytest.param("\ud800" * 40, id="lone-surrogates"),
        pytest.param(SAFE_QUERY["msg_signature"][:-1] + "\udcff", id="surrogate-escaped-byte"),
    ],
)
def test_a_wrong_msg_signature_is_a_signature_error(msg_signature):
    with pytest.raises(events.SignatureError) as caught:
        crypto().decrypt(SAFE_ENCRYPT, msg_signature=msg_signature,
                         timestamp=SAFE_QUERY["timestamp"], nonce=SAFE_QUERY["nonce"])  # fmt: skip
    assert str(caught.value) == "msg_signature does not match the Encrypt field (code -40001)"
    assert caught.value.status == 403


@pytest.mark.parametrize("argument", ["encrypted", "msg_signature", "timestamp", "nonce"])
@pytest.mark.parametrize(
    ("value", "kind"), [pytest.param(None, "NoneType", id="none"), pytest.param(7, "int", id="int")]
)
def test_decrypt_arguments_must_be_str(argument, value, kind):
    kwargs = {
        "encrypted": SAFE_ENCRYPT,
        "msg_signature": SAFE_QUERY["msg_signature"],
        "timestamp": SAFE_QUERY["timestamp"],
        "nonce": SAFE_QUERY["nonce"],
        argument: value,
    }
    encrypted = kwargs.pop("encrypted")
    with pytest.raises(wxqr.ValidationError) as caught:
        crypto().decrypt(encrypted, **kwargs)
    assert caught.value.argument == argument
    assert str(caught.value) == f"{argument}: must be a str, got {kind}"


# -- MessageCrypto.encrypt ------------------------------------------------------------------------
def test_default_timestamp_and_random_prefix_come_from_the_clock_and_secrets(monkeypatch):
    v = REPLY_VECTOR
    asked = []

    def token_bytes(n):
        asked.append(n)
        return v["random"]

    monkeypatch.setattr(time, "time", lambda: int(v["timestamp"]) + 0.9)  # truncated, not rounded
    monkeypatch.setattr(secrets, "token_bytes", token_bytes)
    sealed = crypto().encrypt(v["msg"], nonce=v["nonce"])
    assert sealed == events.Encrypted(v["encrypt"], v["msg_signature"], v["timestamp"], v["nonce"])
    assert asked == [16]


@pytest.mark.parametrize(
    ("timestamp", "stamp"),
    [
        pytest.param(1713424427, "1713424427", id="int"),
        pytest.param("1713424427", "1713424427", id="str"),
        pytest.param(0, "0", id="zero"),
    ],
)
def test_explicit_timestamps_are_signed_as_decimal_text(timestamp, stamp):
    v = REPLY_VECTOR
    sealed = crypto().encrypt(v["msg"], nonce=v["nonce"], timestamp=timestamp,
                              random_prefix=v["random"])  # fmt: skip
    assert sealed.timestamp == stamp
    assert sealed.msg_signature == sha1_sorted(TOKEN, stamp, v["nonce"], v["encrypt"])


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        pytest.param(True, "must be Unix seconds (int or decimal str) or None", id="bool"),
        pytest.param(False, "must be Unix seconds (int or decimal str) or None", id="false"),
        pytest.param(1.5, "must be Unix seconds (int or decimal str) or None", id="float"),
        pytest.param(b"1", "must be Unix seconds (int or decimal str) or None", id="bytes"),
        pytest.param("1.5", "must be a decimal string of Unix seconds", id="decimal-point"),
        pytest.param("-1", "must be a decimal string of Unix seconds", id="negative"),
        pytest.param("", "must be a decimal string of Unix seconds", id="empty"),
        pytest.param(" 1", "must be a decimal string of Unix seconds", id="space"),
        pytest.param("²", "must be a decimal string of Unix seconds", id="superscript-two"),
        pytest.param("１２", "must be a decimal string of Unix seconds", id="fullwidth-digits"),
    ],
)
def test_bad_timestamps_are_refused(timestamp, message):
    with pytest.raises(wxqr.ValidationError) as caught:
        crypto().encrypt("hi", nonce="n", timestamp=timestamp)
    assert caught.value.argument == "timestamp"
    assert str(caught.value) == f"timestamp: {message}"


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param(b"x" * 15, id="15-bytes"),
        pytest.param(b"x" * 17, id="17-bytes"),
        pytest.param(b"", id="empty"),
        pytest.param("x" * 16, id="str"),
        pytest.param(bytearray(16), id="bytearray"),
    ],
)
def test_random_prefix_must_be_16_bytes(prefix):
    with pytest.raises(wxqr.ValidationError) as caught:
        crypto().encrypt("hi", nonce="n", timestamp=1, random_prefix=prefix)
    assert str(caught.value) == "random_prefix: must be exactly 16 bytes"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"plaintext": b"hi"}, "plaintext: must be a str, got bytes", id="plaintext"),
        pytest.param({"plaintext": None}, "plaintext: must be a str, got NoneType",
                     id="no-plaintext"),
        pytest.param({"nonce": 1}, "nonce: must be a str, got int", id="nonce"),
    ],
)  # fmt: skip
def test_encrypt_arguments_must_be_str(kwargs, message):
    args = {"plaintext": "hi", "nonce": "n", **kwargs}
    with pytest.raises(wxqr.ValidationError) as caught:
        crypto().encrypt(args.pop("plaintext"), timestamp=1, **args)
    assert str(caught.value) == message


def test_non_ascii_plaintext_round_trips_with_its_utf8_length():
    c = crypto()
    sealed = c.encrypt("欢迎", nonce="n", timestamp=1, random_prefix=bytes(16))
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(KEY + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    raw = dec.update(base64.b64decode(sealed.encrypt)) + dec.finalize()
    assert raw[16:20] == struct.pack(">I", 6)  # bytes, not characters
    assert raw[20:26] == "欢迎".encode()
    assert c.decrypt(sealed.encrypt, msg_signature=sealed.msg_signature, timestamp="1",
                     nonce="n") == "欢迎"  # fmt: skip


# -- parse ----------------------------------------------------------------------------------------
def xml(*fields: str) -> str:
    return "<xml>" + "".join(fields) + "</xml>"


HEAD = (
    f"<ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName>"
    "<CreateTime>1714112445</CreateTime>"
)


def nested(levels: int) -> str:
    """A push whose deepest element is ``levels`` below <xml> (a flat field is 1)."""
    names = [f"L{i}" for i in range(1, levels + 1)]
    inner = "".join(f"<{n}>" for n in names) + "v" + "".join(f"</{n}>" for n in reversed(names))
    return xml(HEAD, "<MsgType>text</MsgType>", inner)


def test_nesting_is_flattened_down_to_four_levels():
    event = events.parse(nested(4))
    assert event.raw["L1/L2/L3/L4"] == "v"
    assert events.parse(nested(2)).raw["L1/L2"] == "v"


def test_nesting_five_levels_deep_is_refused():
    with pytest.raises(events.MalformedMessage) as caught:
        events.parse(nested(5))
    assert str(caught.value) == "XML nested too deeply (code -40002)"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("<!DOCTYPE xml><xml/>",
                     "XML with a DOCTYPE, ENTITY or other declaration is refused", id="doctype"),
        pytest.param("<xml><ToUserName>a</ToUserName>", "the body is not well-formed XML",
                     id="unclosed"),
        pytest.param("{not json", "the body is not valid JSON", id="bad-json"),
        pytest.param("[1, 2]", "the body is neither XML nor JSON", id="json-array"),
        pytest.param("hello <xml/>", "the body is neither XML nor JSON", id="text"),
        pytest.param("X<xml/>", "the body is neither XML nor JSON", id="junk-before-xml"),
        pytest.param("X{}", "the body is neither XML nor JSON", id="junk-before-json"),
        pytest.param(xml(HEAD.replace("FromUserName", "From"), "<MsgType>text</MsgType>"),
                     "the push has no FromUserName", id="no-openid"),
        pytest.param(xml(HEAD, "<MsgType> </MsgType>"), "the push has no MsgType",
                     id="blank-msgtype"),
        pytest.param(xml(HEAD.replace("1714112445", "soon"), "<MsgType>text</MsgType>"),
                     "CreateTime is not an integer", id="bad-time"),
    ],
)  # fmt: skip
def test_malformed_bodies_say_what_is_wrong(body, message):
    with pytest.raises(events.MalformedMessage) as caught:
        events.parse(body)
    assert str(caught.value) == f"{message} (code -40002)"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(event_xml("SCAN", "7").encode(), id="bytes"),
        pytest.param(bytearray(event_xml("SCAN", "7").encode()), id="bytearray"),
        pytest.param(memoryview(event_xml("SCAN", "7").encode()), id="memoryview"),
        pytest.param("\ufeff" + event_xml("SCAN", "7"), id="str-with-bom"),
        pytest.param(b"\xef\xbb\xbf" + event_xml("SCAN", "7").encode(), id="utf8-bom"),
        pytest.param(" \t\r\n" + event_xml("SCAN", "7"), id="leading-whitespace"),
        pytest.param(event_xml("SCAN", "7") + "\r\n", id="trailing-newline"),
        pytest.param("\r\n" + event_json("SCAN", "7"), id="json-leading-newline"),
        pytest.param(b"\xef\xbb\xbf" + event_json("SCAN", "7").encode(), id="json-bom"),
    ],
)
def test_every_body_form_gives_the_same_scan(body):
    scan = events.parse(body)
    assert scan == events.QrScan(OPENID, "7", "TICKET", False, 123456789, ACCOUNT, scan.raw)


@pytest.mark.parametrize(
    "body", [pytest.param(5, id="int"), pytest.param(None, id="none"), pytest.param([], id="list")]
)
def test_a_body_that_is_neither_bytes_nor_str_is_a_validation_error(body):
    with pytest.raises(wxqr.ValidationError) as caught:
        events.parse(body)
    assert caught.value.argument == "body"
    assert str(caught.value) == f"body: must be bytes or str, got {type(body).__name__}"


def test_a_message_is_an_event_named_by_its_msg_type():
    event = events.parse(xml(HEAD, "<MsgType>text</MsgType><Content></Content>"))
    assert event == events.Event("text", OPENID, 1714112445, ACCOUNT, event.raw)
    assert event.raw["Content"] == ""  # an empty element is an empty string


def test_a_scan_of_a_follower_names_both_sides():
    scan = events.parse(event_xml("SCAN", "42", "TK", openid="o_x", account="gh_y",
                                  create_time=5))  # fmt: skip
    assert scan == events.QrScan("o_x", "42", "TK", False, 5, "gh_y", scan.raw)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(event_xml("SCAN", "42", None), id="no-ticket"),
        pytest.param(event_xml("SCAN", "42", ""), id="empty-cdata"),
        pytest.param(event_xml("SCAN", "42", "  "), id="blank"),
        pytest.param(event_xml("SCAN", "42", None).replace("</xml>", "<Ticket></Ticket></xml>"),
                     id="empty-element"),
    ],
)  # fmt: skip
def test_a_scan_without_a_ticket_has_ticket_none(body):
    scan = events.parse(body)
    assert scan == events.QrScan(OPENID, "42", None, False, 123456789, ACCOUNT, scan.raw)


@pytest.mark.parametrize(
    "key", [pytest.param(None, id="no-eventkey"), pytest.param("", id="empty")]
)
def test_scan_without_an_event_key_is_a_plain_event(key):
    event = events.parse(event_xml("SCAN", key, "T"))
    assert event == events.Event("SCAN", OPENID, 123456789, ACCOUNT, event.raw)


def test_json_values_keep_their_json_text():
    body = event_json(
        "debug_demo",
        nested={"名": "值", "n": [1, 2]},
        items=[{"a": None}],
        flag=True,
        off=False,
        nothing=None,
        count=3,
        ratio=1.5,
        text="中文",
    )
    raw = events.parse(body).raw
    assert raw["nested"] == '{"名":"值","n":[1,2]}'  # compact, not ASCII-escaped
    assert raw["items"] == '[{"a":null}]'
    assert (raw["flag"], raw["off"], raw["nothing"]) == ("true", "false", "null")
    assert (raw["count"], raw["ratio"], raw["text"]) == ("3", "1.5", "中文")
    assert raw["CreateTime"] == "123456789"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(event_xml("SCAN", "7"), "application/xml", id="xml"),
        pytest.param(event_json("SCAN", "7"), "application/json", id="json"),
    ],
)
async def test_a_reply_takes_the_format_of_the_push(body, content_type):
    receiver = events.Receiver(TOKEN)

    @receiver.on_scan
    async def welcome(scan):
        return "welcome"

    answer = await receiver.handle("POST", signed_query(), body.encode())
    assert answer.status == 200
    assert answer.content_type.startswith(content_type)
    reply = events.parse(answer.body)
    assert (reply.name, reply.raw["Content"], reply.raw["ToUserName"]) == (
        "text",
        "welcome",
        OPENID,
    )
