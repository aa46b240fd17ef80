"""``cgi-bin/shorten/gen`` and ``cgi-bin/shorten/fetch`` (reference §4).

* gen: ``long_data`` missing or empty → 47003; not a string → 47001; over 4096 UTF-8 bytes →
  9410010. ``expire_seconds`` defaults to 2592000; over 2592000 → 9410011; non-integer → 47001;
  below 1 → 47003. An empty body → 44002; a body that is not a JSON object → 47001.
* The key is 15 base62 characters.
* fetch: unknown, expired or another account's key → 9410012; ``expire_seconds`` in the answer
  is the *remaining* lifetime.
"""

from __future__ import annotations

from ._http import Call, Reject, Response, as_int, json_response
from ._state import ShortKey

__all__ = ["handle_fetch", "handle_gen"]

MAX_LONG_DATA = 4096
MAX_EXPIRE = 2_592_000


def handle_gen(call: Call) -> Response:
    """``POST cgi-bin/shorten/gen`` ``{long_data, expire_seconds}``."""
    account = call.account
    assert account is not None
    long_data = call.body.get("long_data")
    if long_data is None or long_data == "":
        raise Reject(47003, "argument invalid! data.long_data is empty")
    if not isinstance(long_data, str):
        raise Reject(47001)
    if len(long_data.encode("utf-8")) > MAX_LONG_DATA:
        raise Reject(9410010)
    raw = call.body.get("expire_seconds")
    expire = MAX_EXPIRE if raw is None else as_int(raw)
    if expire is None:
        raise Reject(47001)
    if expire > MAX_EXPIRE:
        raise Reject(9410011)
    if expire < 1:
        raise Reject(47003, "argument invalid! data.expire_seconds invalid")
    state = call.state
    key = state.random_string(15)
    while key in state.short_keys:
        key = state.random_string(15)
    state.short_keys[key] = ShortKey(key, account.appid, long_data, call.now, call.now + expire)
    return json_response({"errcode": 0, "errmsg": "ok", "short_key": key})


def handle_fetch(call: Call) -> Response:
    """``POST cgi-bin/shorten/fetch`` ``{short_key}``."""
    account = call.account
    assert account is not None
    key = call.body.get("short_key")
    if not key or not isinstance(key, str):
        raise Reject(47003, "argument invalid! data.short_key is empty")
    entry = call.state.short_keys.get(key)
    if entry is None or entry.appid != account.appid or call.now >= entry.expires_at:
        raise Reject(9410012)
    return json_response(
        {
            "errcode": 0,
            "errmsg": "ok",
            "long_data": entry.long_data,
            "create_time": int(entry.created_at),
            "expire_seconds": int(entry.expires_at - call.now),
        }
    )
