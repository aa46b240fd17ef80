"""Quota and rid management: ``clear_quota``, ``openapi/quota/get``, ``openapi/rid/get`` (§9).

* ``clear_quota`` ``{appid}``: the appid must be the token's own (40013 otherwise); resets every
  daily counter (45009 limits); 10 per Beijing month (``Account.clear_quota_limit``) → 48006.
* ``openapi/quota/get`` ``{cgi_path}``: ``/cgi-bin/...`` or ``/wxa/...`` path of an emulated API
  (76021 otherwise). ``daily_limit`` is 0 for APIs without a daily cap.
* ``openapi/rid/get`` ``{rid}``: every error answer's rid is recorded; malformed → 76002, unknown
  → 76001, another account's → 76003, older than 7 days → 76004.
"""

from __future__ import annotations

import re

from ._http import Call, Reject, Response, json_response

__all__ = ["handle_clear_quota", "handle_quota_get", "handle_rid_get"]

_RID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}")
#: Per-endpoint rate limits reported by quota/get: (calls, window seconds).
_RATE_LIMITS = {
    "wxa/getwxacodeunlimit": (5000, 60),
    "cgi-bin/stable_token": (10_000, 60),
}


def handle_clear_quota(call: Call) -> Response:
    """``POST cgi-bin/clear_quota`` ``{appid}``."""
    account = call.account
    assert account is not None
    if call.body.get("appid") != account.appid:
        raise Reject(40013)
    month = call.state.clock.month()
    if account.used("clear_quota", month) >= account.clear_quota_limit:
        raise Reject(48006)
    account.bump("clear_quota", month)
    for name in [n for n in account.usage if n.startswith("daily:")]:
        del account.usage[name]
    return json_response({"errcode": 0, "errmsg": "ok"})


def handle_quota_get(call: Call) -> Response:
    """``POST cgi-bin/openapi/quota/get`` ``{cgi_path}``."""
    from ._app import ROUTES  # the routing table knows which APIs exist

    account = call.account
    assert account is not None
    cgi_path = call.body.get("cgi_path")
    if not isinstance(cgi_path, str) or not cgi_path.startswith("/"):
        raise Reject(76021)
    endpoint = cgi_path.strip("/")
    if endpoint not in ROUTES or endpoint == "cgi-bin/showqrcode":
        raise Reject(76021)
    limit = account.daily_limits.get(endpoint, 0)
    used = account.used(f"daily:{endpoint}", call.state.clock.day())
    calls, window = _RATE_LIMITS.get(endpoint, (0, 0))
    return json_response(
        {
            "errcode": 0,
            "errmsg": "ok",
            "quota": {"daily_limit": limit, "used": used, "remain": max(0, limit - used)},
            "rate_limit": {"call_count": calls, "refresh_second": window},
            "component_rate_limit": {"call_count": calls, "refresh_second": window},
        }
    )


def handle_rid_get(call: Call) -> Response:
    """``POST cgi-bin/openapi/rid/get`` ``{rid}``."""
    account = call.account
    assert account is not None
    rid = call.body.get("rid")
    if not isinstance(rid, str) or not _RID.fullmatch(rid):
        raise Reject(76002)
    record = call.state.rids.get(rid)
    if record is None:
        raise Reject(76001)
    if record.appid != account.appid:
        raise Reject(76003)
    if call.now - record.invoke_time > 7 * 86400:
        raise Reject(76004)
    return json_response(
        {
            "errcode": 0,
            "errmsg": "ok",
            "request": {
                "invoke_time": record.invoke_time,
                "cost_in_ms": 1,
                "request_url": record.request_url,
                "request_body": record.request_body,
                "response_body": record.response_body,
                "client_ip": record.client_ip,
            },
        }
    )
