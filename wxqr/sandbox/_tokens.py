"""``cgi-bin/token`` and ``cgi-bin/stable_token``, and the access-token check of every API call.

Semantics (reference §1, §2):

* ``cgi-bin/token`` issues a new token on every fetch (``expires_in`` 7200); the previous one
  keeps working for 300 s more, then answers 40001 ("not latest").
* ``stable_token`` in normal mode returns the current token with its *remaining* lifetime; in
  the last 300 s of a token's life it issues a new one (both work until the old one expires),
  so ``expires_in`` is always > 300. ``force_refresh`` invalidates the current token at once
  and issues a new one, unless the last forced refresh was < 30 s ago (then: no refresh, the
  current token is returned). The 21st forced refresh of a Beijing day answers 45009 (WeChat
  does not document this case).
* The two kinds are isolated: neither invalidates the other.
* Credential checks, in order: grant_type (40002), appid missing (41002), secret missing
  (41004), unknown appid (40013), wrong secret (40125), frozen secret (40243), client IP not in
  the account's whitelist (40164; only when the account has one). The IP whitelist applies to
  the token endpoints only.
* An API call's ``access_token``: missing 41001, not shaped like a token at all 40014,
  unknown or superseded 40001, expired 42001.
"""

from __future__ import annotations

import re

from ._http import Call, Reject, Response, as_bool, json_response, parse_json_object
from ._state import TOKEN_OVERLAP, TOKEN_TTL, Account, IssuedToken

__all__ = ["authenticate", "handle_stable_token", "handle_token"]

#: What the sandbox's tokens look like (``SandboxState._token_string``): digits, ``_``, then
#: base64url-ish characters; WeChat reserves 512 characters for them.
_TOKEN_SHAPE = re.compile(r"[0-9]{1,4}_[A-Za-z0-9_\-]{16,508}")


def _check_credentials(call: Call, grant_type: object, appid: object, secret: object) -> Account:
    if grant_type != "client_credential":
        raise Reject(40002)
    if not appid:
        raise Reject(41002)
    if not secret:
        raise Reject(41004)
    account = call.state.accounts.get(str(appid))
    if account is None:
        raise Reject(40013)
    call.account = account
    if str(secret) != account.secret:
        raise Reject(40125)
    if account.secret_frozen:
        raise Reject(40243)
    ip = call.request.client or "0.0.0.0"
    if account.ip_whitelist is not None and ip not in account.ip_whitelist:
        raise Reject(40164, f"invalid ip {ip} ipv6 ::ffff:{ip}, not in whitelist")
    consume_daily_quota(call, account)
    return account


def consume_daily_quota(call: Call, account: Account) -> None:
    """Count the call in today's ``used`` for the endpoint; 45009 beyond its daily limit."""
    limit = account.daily_limits.get(call.endpoint)
    day = call.state.clock.day()
    if limit is not None and account.used(f"daily:{call.endpoint}", day) >= limit:
        raise Reject(45009)
    account.bump(f"daily:{call.endpoint}", day)


def _token_answer(token: IssuedToken, now: float) -> Response:
    expires_in = max(0, int(token.expires_at - now))
    return json_response({"access_token": token.value, "expires_in": expires_in})


def handle_token(call: Call) -> Response:
    """``GET cgi-bin/token?grant_type=client_credential&appid=&secret=``."""
    if call.request.method != "GET":
        raise Reject(43001)
    q = call.request.query
    account = _check_credentials(call, q.get("grant_type"), q.get("appid"), q.get("secret"))
    token = call.state._issue_token(account, "token", overlap=True)
    return json_response({"access_token": token.value, "expires_in": TOKEN_TTL})


def handle_stable_token(call: Call) -> Response:
    """``POST cgi-bin/stable_token`` with ``{grant_type, appid, secret, force_refresh}``."""
    if call.request.method != "POST":
        raise Reject(43002)
    body = parse_json_object(call.request.body)
    if body is None:
        raise Reject(43002)
    account = _check_credentials(
        call, body.get("grant_type"), body.get("appid"), body.get("secret")
    )
    force = as_bool(body.get("force_refresh"), False)
    if force is None:
        raise Reject(40097)
    state, now = call.state, call.now
    current = account.current_token("stable_token")
    alive = current is not None and now < current.expires_at
    if force:
        cooling = account.last_force_refresh is not None and now - account.last_force_refresh < 30
        if not (cooling and alive):
            day = state.clock.day()
            if account.used("stable_force_refresh", day) >= account.stable_force_refresh_limit:
                raise Reject(45009)
            account.bump("stable_force_refresh", day)
            account.last_force_refresh = now
            return _token_answer(state._issue_token(account, "stable_token", overlap=False), now)
    if current is not None and alive and current.expires_at - now > TOKEN_OVERLAP:
        return _token_answer(current, now)
    return _token_answer(state._issue_token(account, "stable_token", overlap=True), now)


def authenticate(call: Call) -> Account:
    """Resolve the ``access_token`` query parameter to its account, or reject the call."""
    value = call.request.query.get("access_token")
    if not value:
        raise Reject(41001)
    token = call.state.tokens.get(value)
    account = call.state.accounts.get(token.appid) if token is not None else None
    if token is None or account is None:
        # A string that cannot be a token at all is "invalid access_token" (40014); a
        # well-formed one that is not (or no longer) known, "invalid credential" (40001).
        raise Reject(40001 if _TOKEN_SHAPE.fullmatch(value) else 40014)
    call.account = account
    if call.now >= token.expires_at:
        raise Reject(40001 if token.superseded else 42001)
    return account
