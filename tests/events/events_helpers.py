"""Helpers of the events tests: pushes built the way WeChat builds them (reference §1).

Imported as a plain module (tests/ has no packages).
"""

from __future__ import annotations

import hashlib
import json
import time

TOKEN = "AAAAA"
KEY = "A" * 43  # decodes to 32 zero bytes (the official example)
APPID = "wxba5fad812f8e6fb9"
OTHER_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNT = "gh_97417a04a28d"
OPENID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"

# Official vectors (reference/events.md §1.6).
GET_VECTOR = {
    "signature": "f464b24fc39322e44b38aa78f5edd27bd1441696",
    "timestamp": "1714036504",
    "nonce": "1514711492",
    "echostr": "4375120948345356249",
}
POST_VECTOR = {
    "signature": "899cf89e464efb63f54ddac96b0a0a235f53aa78",
    "timestamp": "1714037059",
    "nonce": "486452656",
}
SAFE_ENCRYPT = (
    "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqz"
    "DpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pe"
    "de2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBreb"
    "ufAlr7F9mFUPAJGj04="
)
SAFE_QUERY = {
    "signature": "6c5c811b55cc85e0e1b54100749188c20beb3f5d",
    "timestamp": "1714112445",
    "nonce": "415670741",
    "openid": OPENID,
    "encrypt_type": "aes",
    "msg_signature": "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3",
}
SAFE_PLAINTEXT = (
    '{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY",'
    '"CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}'
)
REPLY_VECTOR = {
    "msg": '{"demo_resp":"good luck"}',
    "random": b"707722b803182950",
    "timestamp": "1713424427",
    "nonce": "415670741",
    "encrypt": (
        "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
    ),
    "msg_signature": "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1",
}


def sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signed_query(token: str = TOKEN, *, timestamp: int | None = None, nonce: str = "123456"):
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "signature": sha1_sorted(token, stamp, nonce),
        "timestamp": stamp,
        "nonce": nonce,
        "openid": OPENID,
    }


def event_xml(
    event: str = "subscribe",
    key: str | None = "qrscene_123123",
    ticket: str | None = "TICKET",
    *,
    openid: str = OPENID,
    account: str = ACCOUNT,
    create_time: int = 123456789,
) -> str:
    parts = [
        f"<ToUserName><![CDATA[{account}]]></ToUserName>",
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
        f"<CreateTime>{create_time}</CreateTime>",
        "<MsgType><![CDATA[event]]></MsgType>",
        f"<Event><![CDATA[{event}]]></Event>",
    ]
    if key is not None:
        parts.append(f"<EventKey><![CDATA[{key}]]></EventKey>")
    if ticket is not None:
        parts.append(f"<Ticket><![CDATA[{ticket}]]></Ticket>")
    return "<xml>" + "".join(parts) + "</xml>"


def event_json(event: str = "SCAN", key: str = "42", ticket: str = "TICKET", **extra) -> str:
    data = {
        "ToUserName": ACCOUNT,
        "FromUserName": OPENID,
        "CreateTime": 123456789,
        "MsgType": "event",
        "Event": event,
        "EventKey": key,
        "Ticket": ticket,
        **extra,
    }
    return json.dumps(data)


def encrypted_push(crypto, plaintext: str, *, token: str = TOKEN, compatible: bool = False,
                   timestamp: int | None = None, nonce: str = "777", fmt: str = "xml"):  # fmt: skip
    """(query, body) of a safe-mode (or compatible-mode) push of ``plaintext``."""
    query = signed_query(token, timestamp=timestamp, nonce=nonce)
    sealed = crypto.encrypt(plaintext, nonce=nonce, timestamp=query["timestamp"])
    query.update(encrypt_type="aes", msg_signature=sealed.msg_signature)
    if fmt == "json":
        body = {"ToUserName": ACCOUNT, "Encrypt": sealed.encrypt}
        if compatible:
            body = {**json.loads(plaintext), **body}
        return query, json.dumps(body).encode()
    inner = (
        plaintext[len("<xml>") : -len("</xml>")]
        if compatible
        else (f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>")
    )
    return query, f"<xml>{inner}<Encrypt><![CDATA[{sealed.encrypt}]]></Encrypt></xml>".encode()
