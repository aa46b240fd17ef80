"""One call against a hostile server, in a fresh process, reporting its peak RSS growth.

``python wire_rss_child.py BASE_URL WIRE BACKEND`` prints one JSON line: the exception type
and message, the seconds the call took, and the growth of the peak RSS over the RSS just before
the call (MiB, from ``/proc/self/status``; the peak is reset through ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import json
import sys
import time

import anyio

import wxqr


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])  # KiB
    raise LookupError(field)


async def main(base: str, wire: str) -> dict[str, object]:
    async with wxqr.Client(
        "wxhostile",
        "hostile-secret",
        api_base_url=base,
        mp_base_url=base,
        wire=wire,
        rate_limits={},
        max_retries=0,
        timeout=20,
    ) as client:
        await client.access_token()  # warm: imports, connection, token
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        before = _status("VmRSS")
        started = time.monotonic()
        try:
            await client.wxacode.get_unlimited(scene="a=1")
        except wxqr.WxqrError as exc:
            error, message = type(exc).__name__, str(exc)
        else:
            error, message = None, ""
        elapsed = time.monotonic() - started
        peak = _status("VmHWM")
    return {
        "error": error,
        "message": message,
        "seconds": elapsed,
        "rss_growth_mib": (peak - before) / 1024,
    }


if __name__ == "__main__":
    base, wire, backend = sys.argv[1:4]
    print(json.dumps(anyio.run(main, base, wire, backend=backend)))
