"""Hostile bodies: whatever arrives, parse raises MalformedMessage (never a foreign exception),
decrypt raises a ReceiveError, and a signed request always gets an Answer."""

from __future__ import annotations

import contextlib

import anyio
from events_helpers import APPID, KEY, TOKEN, sha1_sorted, signed_query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wxqr import events

FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "EventKey", "Ticket"]

xml_bodies = st.builds(
    lambda decl, pairs, tail: (decl + "<xml>" + "".join(f"<{k}>{v}</{k}>" for k, v in pairs)
                               + "</xml>" + tail),
    st.sampled_from(["", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="bogus"?>',
                     '<?xml version="1.0" encoding="big5"?>',
                     '<?xml version="1.0" encoding="utf-16"?>']),
    st.lists(st.tuples(st.sampled_from(FIELDS), st.text(max_size=20)), max_size=8),
    st.sampled_from(["", " ", "<", "&", "]]>", "\x00"]),
)  # fmt: skip
json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
).map(lambda value: __import__("json").dumps(value))  # fmt: skip
anything = st.binary(max_size=300) | st.text(max_size=300) | xml_bodies | json_bodies


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anything)
def test_parse_only_ever_raises_malformed_message(body):
    try:
        result = events.parse(body)
    except events.MalformedMessage:
        return
    assert isinstance(result, events.QrScan | events.Event)
    assert result.openid
    assert all(isinstance(v, str) for v in result.raw.values())


CRYPTO = events.MessageCrypto(TOKEN, KEY, APPID)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_decrypt_only_ever_raises_receive_errors(data):
    import base64

    encrypt = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    with contextlib.suppress(events.ReceiveError):
        CRYPTO.decrypt(encrypt, msg_signature=sha1_sorted(TOKEN, "1", "n", encrypt), timestamp="1",
                       nonce="n")  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(anything, st.booleans())
def test_a_signed_request_always_gets_an_answer(body, encrypted):
    receiver = events.Receiver(TOKEN, encoding_aes_key=KEY, appid=APPID)

    @receiver.on_scan
    async def scanned(scan):
        return None

    query = signed_query()
    if encrypted:
        query.update(encrypt_type="aes", msg_signature="0" * 40)
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body

    async def run():
        return await receiver.handle("POST", query, data)

    answer = anyio.run(run)
    assert answer.status in (200, 400, 403, 413)
    if answer.status != 200:
        assert isinstance(answer.error, events.ReceiveError)
