"""The public surface of wxqr.events (other modules build on these names), its README snippets,
and secret hygiene across a run full of refusals and failures."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import anyio
import pytest
from events_helpers import APPID, event_xml, signed_query

import wxqr
from wxqr import events

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")

PUBLIC = [
    "MIN_TTL",
    "Answer",
    "AppIdMismatch",
    "DecryptError",
    "Dedup",
    "DedupError",
    "Encrypted",
    "Event",
    "EventHandler",
    "MalformedMessage",
    "MemoryDedup",
    "MessageCrypto",
    "QrScan",
    "ReceiveError",
    "Receiver",
    "RedisDedup",
    "ScanHandler",
    "SignatureError",
    "check_signature",
    "dedup_key",
    "parse",
]


def test_all_is_pinned():
    assert events.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(events, name) is not None


def test_contract_field_names():
    import attrs

    assert [f.name for f in attrs.fields(events.QrScan)] == [
        "openid", "scene", "ticket", "new_follower", "create_time", "account", "raw",
    ]  # fmt: skip
    assert [f.name for f in attrs.fields(events.Event)][:5] == [
        "name", "openid", "create_time", "account", "raw",
    ]  # fmt: skip
    assert [f.name for f in attrs.fields(events.Answer)][:3] == ["status", "content_type", "body"]
    assert [f.name for f in attrs.fields(events.Encrypted)] == [
        "encrypt", "msg_signature", "timestamp", "nonce",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("cls", "code", "status"),
    [
        (events.SignatureError, -40001, 403),
        (events.MalformedMessage, -40002, 400),
        (events.AppIdMismatch, -40005, 400),
        (events.DecryptError, -40007, 400),
    ],
)
def test_errors_are_wxqr_errors_with_official_codes(cls, code, status):
    error = cls("x")
    assert isinstance(error, wxqr.WxqrError)
    assert (error.code, error.status) == (code, status)
    assert str(code) in str(error)
    import pickle

    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.code, copy.status) == (cls, code, status)


def test_every_public_callable_is_documented():
    for name in PUBLIC:
        obj = getattr(events, name)
        if callable(obj) and name not in ("EventHandler", "ScanHandler"):  # type aliases
            assert (obj.__doc__ or "").strip(), name
    for method in ("handle", "on_scan", "on", "asgi_app", "aiohttp_handler"):
        assert (getattr(events.Receiver, method).__doc__ or "").strip(), method


def test_check_signature_compares_in_constant_time(monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert events.check_signature("t", timestamp="1", nonce="2", signature="x") is False
    assert len(calls) == 1


@pytest.mark.anyio
async def test_skew_boundary():
    now = 1_800_000_000
    receiver = events.Receiver("tok", max_skew=300, clock=lambda: now)
    for offset, status in ((300, 200), (-300, 200), (301, 403), (-301, 403)):
        query = {**signed_query("tok", timestamp=now + offset), "echostr": "e"}
        assert (await receiver.handle("GET", query, b"")).status == status, offset


@pytest.mark.anyio
async def test_memory_dedup_forgets_after_its_ttl(monkeypatch):
    import wxqr.events._dedup as dedup_module

    now = [1000.0]
    monkeypatch.setattr(dedup_module.time, "monotonic", lambda: now[0])
    dedup = events.MemoryDedup(ttl=60)
    assert await dedup.claim("k")
    now[0] += 59.9
    assert not await dedup.claim("k")
    now[0] += 0.2
    assert await dedup.claim("k")


def _snippet(after: str) -> str:
    return README.split(after, 1)[1].split("```python", 1)[1].split("```", 1)[0]


def test_the_receiving_scans_snippet_runs(capsys):
    namespace = {
        "TOKEN": "readme-token",
        "AES_KEY": "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG",
        "APPID": APPID,
        "redis": object(),  # RedisDedup only stores the caller's client
    }
    exec(_snippet("## Receiving scans"), namespace)
    receiver = namespace["receiver"]
    assert isinstance(receiver.dedup, events.RedisDedup)
    receiver.dedup = events.MemoryDedup()  # no Redis here: the handlers are what we test

    async def run():
        return await receiver.handle("POST", signed_query("readme-token"), event_xml().encode())

    answer = anyio.run(run)
    assert b"Welcome!" in answer.body
    assert "123123" in capsys.readouterr().out


def test_the_sandbox_push_snippet_runs():
    from wxqr.sandbox import SandboxState, sandbox_client

    seen = []
    receiver = events.Receiver("readme-token")

    @receiver.on_scan
    async def scanned(scan):
        seen.append((scan.scene, scan.new_follower))

    code = _snippet("### Scans pushed to your server")
    body = "\n".join("    " + line for line in code.strip().splitlines())
    namespace = {"TOKEN": "readme-token", "my_asgi_app": receiver.asgi_app,
                 "sandbox_client": sandbox_client, "state": SandboxState(seed=5)}  # fmt: skip
    exec(f"async def example():\n{body}\n", namespace)
    anyio.run(namespace["example"])
    assert seen == [("login-42", True), ("login-42", False)]


SECRET_TOKEN = "Tok3n-very-secret-0042"
SECRET_KEY = "S3cretKeyS3cretKeyS3cretKeyS3cretKeyS3cret0"


@pytest.mark.anyio
async def test_no_token_or_key_escapes_a_run_full_of_refusals(caplog):
    caplog.set_level(logging.DEBUG)
    receiver = events.Receiver(SECRET_TOKEN, encoding_aes_key=SECRET_KEY, appid=APPID)

    @receiver.on_scan
    async def failing(scan):
        raise RuntimeError("handler failed")

    crypto = events.MessageCrypto(SECRET_TOKEN, SECRET_KEY, APPID)
    other = events.MessageCrypto(SECRET_TOKEN, SECRET_KEY, "wx0000000000000000")
    from events_helpers import encrypted_push

    requests = [
        ("GET", {**signed_query(SECRET_TOKEN), "echostr": "e", "signature": "0" * 40}, b""),
        ("POST", signed_query(SECRET_TOKEN), b"<!DOCTYPE x><xml/>"),
        ("POST", signed_query(SECRET_TOKEN), b"x" * 70000),
        ("POST", *encrypted_push(crypto, event_xml(), token=SECRET_TOKEN)),
        ("POST", *encrypted_push(other, event_xml(), token=SECRET_TOKEN)),
        ("POST", {**signed_query(SECRET_TOKEN), "encrypt_type": "aes", "msg_signature": "1"},
         encrypted_push(crypto, event_xml(), token=SECRET_TOKEN)[1]),
    ]  # fmt: skip
    texts = [repr(receiver), repr(crypto), repr(receiver.dedup), repr(receiver.asgi_app)]
    async with receiver:
        for method, query, body in requests:
            answer = await receiver.handle(method, query, body)
            texts += [repr(answer), answer.body.decode("latin-1")]
            if answer.error is not None:
                texts += [str(answer.error), repr(answer.error)]
                texts.append("".join(traceback.format_exception(answer.error)))
    texts.append(caplog.text)
    texts += [r.getMessage() for r in caplog.records]
    import base64

    raw_key = base64.b64decode(SECRET_KEY + "=")
    for text in texts:
        assert SECRET_TOKEN not in text
        assert SECRET_KEY not in text
        assert raw_key.hex() not in text
    assert "handler failed" in caplog.text  # the log did say what went wrong


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        pytest.param(lambda: events.parse(5), "body", id="parse-int"),
        pytest.param(lambda: events.parse(None), "body", id="parse-none"),
        pytest.param(lambda: events.check_signature("", timestamp="1", nonce="2", signature="3"),
                     "token", id="signature-empty-token"),
        pytest.param(lambda: _crypto().decrypt(b"x", msg_signature="s", timestamp="1", nonce="n"),
                     "encrypted", id="decrypt-bytes"),
        pytest.param(lambda: _crypto().encrypt(b"x", nonce="n"), "plaintext", id="encrypt-bytes"),
        pytest.param(lambda: _crypto().encrypt("x", nonce=1), "nonce", id="encrypt-int-nonce"),
        pytest.param(lambda: _crypto().encrypt("x", nonce="n", timestamp="soon"), "timestamp",
                     id="encrypt-bad-timestamp"),
        pytest.param(lambda: _crypto().encrypt("x", nonce="n", random_prefix="0" * 16),
                     "random_prefix", id="encrypt-str-prefix"),
    ],
)  # fmt: skip
def test_wrong_types_are_validation_errors(call, argument):
    pytest.importorskip("cryptography")
    with pytest.raises(wxqr.ValidationError) as caught:
        call()
    assert caught.value.argument == argument


def _crypto():
    return events.MessageCrypto("tok", "A" * 43, APPID)


def test_non_string_signature_parts_never_match():
    assert not events.check_signature("tok", timestamp=None, nonce="2", signature="3")
    assert not events.check_signature("tok", timestamp=["1"], nonce="2", signature="3")


@pytest.mark.anyio
async def test_handle_checks_its_argument_types_and_treats_lists_as_absent():
    receiver = events.Receiver("tok", max_skew=None)
    with pytest.raises(wxqr.ValidationError):
        await receiver.handle("POST", [("a", "b")], b"")
    with pytest.raises(wxqr.ValidationError):
        await receiver.handle("POST", {}, 5)
    query = {**signed_query("tok"), "echostr": "e"}
    answer = await receiver.handle("GET", {**query, "signature": [query["signature"]]}, b"")
    assert answer.status == 403
    answer = await receiver.handle("GET", {**query, "echostr": ["e"]}, "")
    assert answer.status == 400  # echostr as a list: absent
    assert (await receiver.handle("get", query, bytearray())).body == b"e"
