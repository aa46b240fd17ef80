"""The pure pieces against the official vectors (reference/events.md §1.6) and §1.3's cases."""

from __future__ import annotations

import base64
import struct

import pytest
from events_helpers import (
    APPID,
    GET_VECTOR,
    KEY,
    OTHER_KEY,
    POST_VECTOR,
    REPLY_VECTOR,
    SAFE_ENCRYPT,
    SAFE_PLAINTEXT,
    SAFE_QUERY,
    TOKEN,
    event_json,
    event_xml,
)

import wxqr
from wxqr import events

pytest.importorskip("cryptography")


def crypto(key: str = KEY, appid: str = APPID) -> events.MessageCrypto:
    return events.MessageCrypto(TOKEN, key, appid)


# -- signatures -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "vector", [pytest.param(GET_VECTOR, id="get"), pytest.param(POST_VECTOR, id="post")]
)
def test_official_signature_vectors(vector):
    assert events.check_signature(
        TOKEN, timestamp=vector["timestamp"], nonce=vector["nonce"], signature=vector["signature"]
    )


def test_safe_mode_url_keeps_a_valid_plain_signature():
    q = SAFE_QUERY
    assert events.check_signature(
        TOKEN, timestamp=q["timestamp"], nonce=q["nonce"], signature=q["signature"]
    )


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"signature": "0" * 40}, id="wrong-signature"),
        pytest.param({"signature": ""}, id="empty"),
        pytest.param({"nonce": "1514711493"}, id="other-nonce"),
        pytest.param({"timestamp": "1714036505"}, id="other-timestamp"),
        pytest.param({"signature": "F464B24FC39322E44B38AA78F5EDD27BD1441696"}, id="uppercase"),
        pytest.param({"signature": "f464b24fc39322e44b38aa78f5edd27bd144169"}, id="truncated"),
        pytest.param({"signature": "ф" * 40}, id="non-ascii"),
    ],
)
def test_signature_mismatches(change):
    vector = {**GET_VECTOR, **change}
    assert not events.check_signature(
        TOKEN, timestamp=vector["timestamp"], nonce=vector["nonce"], signature=vector["signature"]
    )
    assert not events.check_signature(
        "BBBBB", timestamp=GET_VECTOR["timestamp"], nonce=GET_VECTOR["nonce"],
        signature=GET_VECTOR["signature"],
    )  # fmt: skip


# -- crypto -------------------------------------------------------------------------------------
def test_official_safe_mode_decrypt_with_a_19_byte_pad():
    raw = base64.b64decode(SAFE_ENCRYPT)
    assert len(raw) == 224  # FullStr 205 B + 19 pad bytes: a 16-byte unpadder would refuse it
    plaintext = crypto().decrypt(
        SAFE_ENCRYPT,
        msg_signature=SAFE_QUERY["msg_signature"],
        timestamp=SAFE_QUERY["timestamp"],
        nonce=SAFE_QUERY["nonce"],
    )
    assert plaintext == SAFE_PLAINTEXT
    assert len(plaintext.encode()) == 167  # msg_len

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(KEY + "=")
    assert key == bytes(32)  # "A" * 43 decodes to 32 zero bytes: the IV is 16 zero bytes
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    full = decryptor.update(raw) + decryptor.finalize()
    assert full[-19:] == bytes([19]) * 19  # the official frame's pad is 19 (PKCS#7, K = 32)
    assert full[:16] == b"a8eedb185eb2fecf"
    assert struct.unpack(">I", full[16:20]) == (167,)
    assert full[20 + 167 : -19] == APPID.encode()


def test_official_encrypted_reply_byte_for_byte():
    v = REPLY_VECTOR
    sealed = crypto().encrypt(
        v["msg"], nonce=v["nonce"], timestamp=v["timestamp"], random_prefix=v["random"]
    )
    assert sealed == events.Encrypted(v["encrypt"], v["msg_signature"], v["timestamp"], v["nonce"])
    assert len(base64.b64decode(sealed.encrypt)) == 64  # FullStr 63 B, pad = 1


def test_encrypt_decrypt_round_trip_with_random_prefixes():
    c = crypto()
    first = c.encrypt("<xml>hi</xml>", nonce="n", timestamp=1)
    second = c.encrypt("<xml>hi</xml>", nonce="n", timestamp=1)
    assert first.encrypt != second.encrypt  # secrets.token_bytes prefix
    assert c.decrypt(
        first.encrypt, msg_signature=first.msg_signature, timestamp="1", nonce="n"
    ) == ("<xml>hi</xml>")


@pytest.mark.parametrize("size", [0, 25, 26, 27, 57, 58, 59])
def test_full_pad_block_when_the_frame_is_a_multiple_of_32(size):
    # frame = 16 + 4 + len(msg) + 18 (appid) -> multiples of 32 at len(msg) = 26, 58...
    c = crypto()
    msg = "x" * size
    sealed = c.encrypt(msg, nonce="n", timestamp=1)
    assert (
        c.decrypt(sealed.encrypt, msg_signature=sealed.msg_signature, timestamp="1", nonce="n")
        == msg
    )
    frame = 16 + 4 + size + len(APPID)
    assert len(base64.b64decode(sealed.encrypt)) == frame + (32 - frame % 32)


def _seal_raw(frame_bytes: bytes) -> tuple[str, str]:
    """Encrypt arbitrary padded bytes with the official key, and sign them."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from events_helpers import sha1_sorted

    key = base64.b64decode(KEY + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    text = base64.b64encode(enc.update(frame_bytes) + enc.finalize()).decode()
    return text, sha1_sorted(TOKEN, "1", "n", text)


def _frame(msg: bytes, appid: bytes = APPID.encode(), declared: int | None = None) -> bytes:
    return b"r" * 16 + struct.pack(">I", len(msg) if declared is None else declared) + msg + appid


@pytest.mark.parametrize(
    ("padded", "error", "code"),
    [
        pytest.param(_frame(b"hi") + b"\x00" * 24, events.DecryptError, -40008, id="pad-0"),
        pytest.param(_frame(b"hi") + b"\x21" * 24, events.DecryptError, -40008, id="pad-33"),
        pytest.param(_frame(b"hi") + b"\x01" * 23 + b"\x18", events.DecryptError, -40008,
                     id="pad-bytes-differ"),
        pytest.param(_frame(b"hi", declared=999) + b"\x18" * 24, events.DecryptError, -40008,
                     id="msg-len-too-big"),
        pytest.param(b"\x20" * 32, events.DecryptError, -40008, id="frame-shorter-than-header"),
        pytest.param(_frame(b"hi", appid=b"wx0000000000000000") + b"\x18" * 24,
                     events.AppIdMismatch, -40005, id="other-appid"),
        pytest.param(_frame(b"\xff\xfe", ) + b"\x18" * 24, events.DecryptError, -40008,
                     id="not-utf8"),
    ],
)  # fmt: skip
def test_strict_frame_checks(padded, error, code):
    assert len(padded) % 32 == 0
    text, signature = _seal_raw(padded)
    with pytest.raises(error) as caught:
        crypto().decrypt(text, msg_signature=signature, timestamp="1", nonce="n")
    assert caught.value.code == code
    assert isinstance(caught.value, wxqr.WxqrError)


@pytest.mark.parametrize(
    ("encrypt", "code"),
    [
        pytest.param("not base64!", -40010, id="not-base64"),
        pytest.param(base64.b64encode(b"x" * 16).decode(), -40007, id="half-block"),
        pytest.param("", -40007, id="empty"),
    ],
)
def test_undecryptable_ciphertext(encrypt, code):
    from events_helpers import sha1_sorted

    with pytest.raises(events.DecryptError) as caught:
        crypto().decrypt(encrypt, msg_signature=sha1_sorted(TOKEN, "1", "n", encrypt),
                         timestamp="1", nonce="n")  # fmt: skip
    assert caught.value.code == code


def test_msg_signature_is_checked_not_signature():
    with pytest.raises(events.SignatureError) as caught:
        crypto().decrypt(
            SAFE_ENCRYPT,
            msg_signature=SAFE_QUERY["signature"],  # the classic confusion (wechatpy#739)
            timestamp=SAFE_QUERY["timestamp"],
            nonce=SAFE_QUERY["nonce"],
        )
    assert caught.value.code == -40001


def test_wrong_key_fails_as_a_decrypt_error():
    sealed = crypto(OTHER_KEY).encrypt("hello", nonce="n", timestamp=1)
    with pytest.raises((events.DecryptError, events.AppIdMismatch)):
        crypto().decrypt(
            sealed.encrypt, msg_signature=sealed.msg_signature, timestamp="1", nonce="n"
        )


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        pytest.param((TOKEN, "A" * 42, APPID), "encoding_aes_key", id="short-key"),
        pytest.param((TOKEN, "A" * 42 + "=", APPID), "encoding_aes_key", id="key-with-padding"),
        pytest.param((TOKEN, "A" * 42 + "-", APPID), "encoding_aes_key", id="key-bad-char"),
        pytest.param(("", KEY, APPID), "token", id="empty-token"),
        pytest.param((TOKEN, KEY, ""), "appid", id="empty-appid"),
    ],
)
def test_crypto_arguments_are_validated_without_echoing_the_key(args, argument):
    with pytest.raises(wxqr.ValidationError) as caught:
        events.MessageCrypto(*args)
    assert caught.value.argument == argument
    assert args[1] not in str(caught.value)


def test_repr_holds_no_secret():
    text = repr(crypto(OTHER_KEY))
    assert OTHER_KEY not in text
    assert TOKEN not in text


def test_missing_extra_is_a_one_line_error_naming_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers", None)
    with pytest.raises(ImportError) as caught:
        crypto()
    assert "wxqr[events]" in str(caught.value)
    assert "\n" not in str(caught.value)
    # Plaintext mode needs no cryptography at all.
    receiver = events.Receiver(TOKEN)
    assert receiver is not None


# -- parse ----------------------------------------------------------------------------------------
def test_subscribe_with_scene_is_a_new_follower_scan():
    scan = events.parse(event_xml("subscribe", "qrscene_123123", "TICKET"))
    assert scan == events.QrScan(
        openid="o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
        scene="123123",
        ticket="TICKET",
        new_follower=True,
        create_time=123456789,
        account="gh_97417a04a28d",
        raw=scan.raw,
    )
    assert scan.raw["EventKey"] == "qrscene_123123"


def test_scan_of_a_follower_keeps_the_scene_as_is():
    scan = events.parse(event_xml("SCAN", "qrscene_x", "T2"))  # SCAN: no prefix stripping
    assert isinstance(scan, events.QrScan)
    assert (scan.scene, scan.new_follower, scan.ticket) == ("qrscene_x", False, "T2")


def test_string_scenes_and_zero_stay_strings():
    assert events.parse(event_xml("SCAN", "order-9")).scene == "order-9"
    assert events.parse(event_xml("SCAN", "0")).scene == "0"
    assert events.parse(event_xml("subscribe", "qrscene_0")).scene == "0"


@pytest.mark.parametrize(
    ("key", "ticket"),
    [
        pytest.param(None, None, id="no-eventkey"),
        pytest.param("", None, id="empty-cdata"),
        pytest.param("last_trade_no_4008123", None, id="follow-after-paying"),
        pytest.param("scanbarcode|EAN_13|6901234567892", None, id="barcode"),
        pytest.param("scanimage|123", None, id="scanimage"),
        pytest.param("qrscene_", "T", id="prefix-without-scene"),
    ],
)
def test_plain_follows_are_events_not_scans(key, ticket):
    event = events.parse(event_xml("subscribe", key, ticket))
    assert isinstance(event, events.Event)
    assert event.name == "subscribe"
    assert event.openid == "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"


def test_other_events_and_messages():
    gone = events.parse(event_xml("unsubscribe", None, None))
    assert isinstance(gone, events.Event)
    assert (gone.name, gone.create_time, gone.account) == (
        "unsubscribe",
        123456789,
        "gh_97417a04a28d",
    )
    text = events.parse(
        "<xml><ToUserName>gh_a</ToUserName><FromUserName>o_b</FromUserName><CreateTime>1"
        "</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>99</MsgId></xml>"
    )
    assert (text.name, text.raw["Content"], text.raw["MsgId"]) == ("text", "hi", "99")


def test_json_bodies_parse_like_xml():
    scan = events.parse(event_json("SCAN", "42", "TK"))
    assert isinstance(scan, events.QrScan)
    assert (scan.scene, scan.ticket, scan.create_time, scan.new_follower) == (
        "42",
        "TK",
        123456789,
        False,
    )
    assert scan.raw["CreateTime"] == "123456789"
    official = events.parse(SAFE_PLAINTEXT)
    assert isinstance(official, events.Event)
    assert (official.name, official.raw["debug_str"]) == ("debug_demo", "hello world")


def test_nested_xml_fields_are_flattened():
    body = event_xml("scancode_push", "rselfmenu_0_1", None).replace(
        "</xml>",
        "<ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo></xml>",
    )
    event = events.parse(body)
    assert event.raw["ScanCodeInfo/ScanType"] == "qrcode"


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]><xml><ToUserName>gh</ToUserName><FromUserName>&lol9;</FromUserName>"
    "<CreateTime>1</CreateTime><MsgType>text</MsgType></xml>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName>gh</ToUserName><FromUserName>&xxe;</FromUserName>"
    "<CreateTime>1</CreateTime><MsgType>text</MsgType></xml>"
)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(XXE, id="external-entity"),
        pytest.param("<!ENTITY x 'y'><xml/>", id="bare-entity"),
        pytest.param("<xml><!-- c --><ToUserName>a</ToUserName></xml>", id="comment"),
        pytest.param("<?xml version='1.0'?>\n<!doctype xml><xml/>", id="lowercase-doctype"),
    ],
)
def test_declarations_are_refused_before_parsing(body, monkeypatch):
    from xml.etree import ElementTree

    def never(*args, **kwargs):
        raise AssertionError("the parser must not run")

    monkeypatch.setattr(ElementTree, "fromstring", never)
    with pytest.raises(events.MalformedMessage) as caught:
        events.parse(body)
    assert caught.value.code == -40002


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("<xml><ToUserName>a</ToUserName>", id="unclosed"),
        pytest.param("{not json", id="bad-json"),
        pytest.param("[1, 2]", id="json-array"),
        pytest.param("hello", id="neither"),
        pytest.param('<?xml version="1.0" encoding="bogus"?><xml/>', id="unknown-encoding"),
        pytest.param('<?xml version="1.0" encoding="big5"?><xml/>', id="multibyte-encoding"),
        pytest.param("", id="empty"),
        pytest.param(event_xml().replace("<CreateTime>123456789", "<CreateTime>soon"),
                     id="bad-time"),
        pytest.param(event_xml().replace("FromUserName", "FromUser"), id="no-openid"),
        pytest.param("<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName>"
                     "<CreateTime>1</CreateTime><MsgType>event</MsgType></xml>", id="no-event"),
    ],
)  # fmt: skip
def test_malformed_bodies(body):
    with pytest.raises(events.MalformedMessage):
        events.parse(body)


def test_cdata_keeps_markup_and_the_model_is_frozen():
    scan = events.parse(event_xml("SCAN", "a<b>&c"))
    assert scan.scene == "a<b>&c"
    with pytest.raises(AttributeError):
        scan.scene = "x"


def test_models_are_hashable_and_raw_is_read_only():
    scan = events.parse(event_xml("SCAN", "7"))
    assert len({scan, events.parse(event_xml("SCAN", "7"))}) == 1
    with pytest.raises(TypeError):
        scan.raw["EventKey"] = "8"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        pytest.param(0, None, id="exact"),
        pytest.param(len(APPID), events.AppIdMismatch, id="msg-len-swallows-the-appid"),
        pytest.param(len(APPID) + 1, events.DecryptError, id="msg-len-one-past-the-frame"),
    ],
)
def test_msg_len_boundaries(extra, error):
    msg = b"hello"
    frame = _frame(msg, declared=len(msg) + extra)
    pad = 32 - len(frame) % 32
    text, signature = _seal_raw(frame + bytes([pad]) * pad)
    if error is None:
        assert crypto().decrypt(text, msg_signature=signature, timestamp="1", nonce="n") == "hello"
    else:
        with pytest.raises(error):
            crypto().decrypt(text, msg_signature=signature, timestamp="1", nonce="n")


def test_dedup_ttl_boundaries():
    assert events.MemoryDedup(ttl=60).ttl == 60
    assert events.RedisDedup(object(), ttl=86_400).ttl == 86_400
    for ttl in (59.9, 86_400.1, True, "60"):
        with pytest.raises(wxqr.ValidationError):
            events.MemoryDedup(ttl=ttl)
