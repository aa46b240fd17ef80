"""The Redis token cache, lock and counters at their exact edges, against a real redis-server
(issue 17: every mutant of ``wxqr/caches/redis.py`` that changes behaviour is caught here or in
the other tests of this directory)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.redis]
