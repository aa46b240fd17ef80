"""The daily budget of 20 forced refreshes, shared by two OS processes through a real Redis.

Two worker processes (``forced_refresh_worker.py``), each with its own ``wxqr.Client`` on one
``RedisTokenCache``, call the sandbox (served by uvicorn on a loopback port). Each call is
answered 40001 once while ``stable_token`` keeps returning the same, still valid, token, so
only a forced refresh helps. Process A spends 10, process B 10 more; B's next one -- the 21st
of the day -- is refused by wxqr without a request to WeChat.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState, VirtualClock, served

pytestmark = [pytest.mark.redis, pytest.mark.slow]

WORKER = Path(__file__).with_name("forced_refresh_worker.py")
QUOTA_GET = "cgi-bin/openapi/quota/get"


class Worker:
    def __init__(self, config: dict, repo_root: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(repo_root)},
            text=True,
        )
        if self._line() != "ready":
            self.process.kill()
            pytest.fail(f"worker failed to start:\n{self.process.communicate()[1]}")

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def send(self, command: str) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self._line()
        if not line:
            pytest.fail(f"worker died:\n{self.process.communicate()[1]}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.communicate("quit\n", timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def forced_requests(state: SandboxState) -> int:
    return sum(
        1
        for r in state.requests_to("cgi-bin/stable_token")
        if (r.json or {}).get("force_refresh") is True
    )


def test_the_21st_forced_refresh_is_refused_across_processes(redis_url, repo_root):
    state = SandboxState(seed=13, clock=VirtualClock(time.time(), frozen=True))
    admin = redis.Redis.from_url(redis_url)
    cooldown = f"wxqr:claim:{DEFAULT_APPID}:stable:force-refresh"
    with served(state) as base_url:
        config = {"api": base_url, "redis": redis_url, "appid": DEFAULT_APPID}
        a = Worker({**config, "secret": DEFAULT_SECRET}, repo_root)
        b = Worker({**config, "secret": DEFAULT_SECRET}, repo_root)
        try:

            def one_round(worker: Worker) -> dict:
                state.faults.add(QUOTA_GET, "errcode", errcode=40001, times=1)
                # Skip WeChat's 30 s spacing (the sandbox's clock and wxqr's shared cooldown)
                # instead of waiting it out 20 times.
                state.clock.advance(31)
                admin.delete(cooldown)
                return worker.send("call")

            results = [one_round(a) for _ in range(10)] + [one_round(b) for _ in range(10)]
            assert [r["ok"] for r in results] == [True] * 20, results
            assert [r["forced"] for r in results] == list(range(1, 21))
            assert forced_requests(state) == 20

            refused = one_round(b)
            assert refused["ok"] is False
            assert refused["error"].startswith("AccessTokenError")
            assert "20 forced stable_token refreshes" in refused["error"]
            assert forced_requests(state) == 20  # the 21st never reached WeChat
            assert a.send("count")["forced"] == 20  # the other process sees the same figure
            assert 45009 not in {r.errcode for r in state.requests_to("cgi-bin/stable_token")}
            counters = [key.decode() for key in admin.scan_iter("wxqr:count:*")]
            assert len(counters) == 1
            assert counters[0].startswith(f"wxqr:count:{DEFAULT_APPID}:stable:forced:")
            assert int(admin.get(counters[0])) == 20
            assert 0 < admin.ttl(counters[0]) <= 2 * 86400
        finally:
            a.close()
            b.close()
            admin.close()
