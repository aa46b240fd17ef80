"""The sandbox served by uvicorn in a child process, for the 10,000-call load test.

Why a child process: in the test's own process the uvicorn thread and the client share one GIL,
and the sandbox draws every wxacode with ``segno`` (about 6-10 ms of CPU an image), so 10,000
images would take ~100 s of server time alone on this 2-core machine. In a child process the
server gets its own core, and the image is drawn by a leaner renderer (same library, same QR
content, mask 0 and 1 px modules instead of the 430 px mask-searched image): still a distinct,
decodable QR of ``f"{page}?scene={scene}"`` per call, about 5x cheaper. Nothing on the client's
side of the wire changes.

Protocol: argv = seed, then fault specs (``wxqr sandbox --fault`` spelling). Prints
``wxqr sandbox listening on <base URL>`` once serving. ``GET /__reliability__/state`` answers
the counters the test asserts on as JSON. Terminated by the parent (SIGTERM).
"""

from __future__ import annotations

import io
import json
import sys
from collections import Counter
from typing import Any

import segno

import wxqr.sandbox._wxacode as sandbox_wxacode
from wxqr.sandbox import SandboxState, create_app, serve

UNLIMITED = "wxa/getwxacodeunlimit"


def lean_qr_png(
    content: str,
    *,
    width: int = 430,
    dark: tuple[int, int, int] = (0, 0, 0),
    transparent: bool = False,
) -> bytes:
    qr = segno.make_qr(content, error="m", boost_error=False, mask=0)
    out = io.BytesIO()
    qr.save(out, kind="png", scale=1, border=4, dark=dark)
    return out.getvalue()


def snapshot(state: SandboxState) -> dict[str, Any]:
    with state.lock:
        answered: Counter[str] = Counter()
        attempts: Counter[str] = Counter()
        faults: Counter[str] = Counter()
        for record in state.requests:
            if record.endpoint != UNLIMITED or record.json is None:
                continue
            scene = str(record.json.get("scene"))
            attempts[scene] += 1
            if record.fault not in (None, "latency"):
                faults[record.fault] += 1
            elif record.status == 200 and record.errcode is None:
                answered[scene] += 1
            elif record.errcode is not None:
                faults[f"errcode {record.errcode}"] += 1
        return {
            "calls": dict(state.calls),
            "token_fetches": dict(state.token_fetches),
            "tokens_issued": dict(state.tokens_issued),
            "max_in_flight": dict(state.max_in_flight),
            "in_flight": dict(state.in_flight),
            "answered": dict(answered),
            "attempts": dict(attempts),
            "faults": dict(faults),
        }


def main(argv: list[str]) -> None:
    seed, specs = int(argv[0]), argv[1:]
    sandbox_wxacode.qr_png = lean_qr_png  # type: ignore[assignment]
    state = SandboxState(seed=seed)
    # 10,000 calls in well under a minute: lift the sandbox's 5,000/min limit (45011).
    state.default_account.unlimited_per_minute = 10**9
    for spec in specs:
        state.faults.add_spec(spec)
    inner = create_app(state)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/__reliability__/state":
            body = json.dumps(snapshot(state)).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await inner(scope, receive, send)

    serve(app=app, port=0, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
