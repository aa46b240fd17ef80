"""The memory cache's contract and the masking of tokens in reprs, at their exact edges.

Companion of the cache behaviour tested through the client in ``tests/test_tokens.py``.
"""

from __future__ import annotations

import anyio
import pytest
from mockwechat import FakeWeChat

import wxqr
from wxqr.caches._base import mask, operation_bound

pytestmark = pytest.mark.anyio

KEY = "wx1a2b3c4d5e6f7a8b:stable"


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        pytest.param("TOKEN1-q8Zr4Lm2Xw7Kp", "***w7Kp", id="long-token-last-4"),
        pytest.param("abcdefghijklm", "***jklm", id="13-chars"),
        pytest.param("abcdefghijkl", "***", id="12-chars-nothing-shown"),
        pytest.param("short", "***", id="short"),
        pytest.param("", "***", id="empty"),
    ],
)
def test_mask_shows_at_most_the_last_four_characters_of_long_secrets(secret, shown):
    assert mask(secret) == shown


def test_a_cached_tokens_repr_masks_the_token():
    token = wxqr.CachedToken("TOKEN1-q8Zr4Lm2Xw7Kp", 1700000000.5)
    assert repr(token) == "CachedToken(value='***w7Kp', expires_at=1700000000.5, refresh_at=None)"


async def test_get_set_and_compare_and_delete():
    cache = wxqr.MemoryTokenCache()
    assert await cache.get(KEY) is None
    assert not await cache.delete(KEY)  # nothing to delete
    token = wxqr.CachedToken("T1-0123456789abc", 1e12)
    await cache.set(KEY, token)
    assert await cache.get(KEY) == token
    assert await cache.get("wx-other:stable") is None
    assert not await cache.delete(KEY, if_value="T0-older")  # someone else's token: kept
    assert await cache.get(KEY) == token
    assert await cache.delete(KEY, if_value="T1-0123456789abc")
    assert await cache.get(KEY) is None
    await cache.set(KEY, token)
    assert await cache.delete(KEY)  # unconditional
    assert await cache.get(KEY) is None
    assert repr(cache) == "MemoryTokenCache(keys=0)"
    await cache.set(KEY, token)
    assert repr(cache) == "MemoryTokenCache(keys=1)"
    await cache.aclose()


async def test_claim_holds_for_exactly_ttl_seconds():
    now = [1000.0]
    cache = wxqr.MemoryTokenCache(clock=lambda: now[0])
    assert await cache.claim("cooldown", 30.0)
    assert not await cache.claim("cooldown", 30.0)
    assert await cache.claim("other", 30.0)  # keys are independent
    now[0] = 1029.9
    assert not await cache.claim("cooldown", 30.0)
    now[0] = 1030.0  # the claim has run out
    assert await cache.claim("cooldown", 30.0)
    assert not await cache.claim("cooldown", 30.0)


async def test_the_lock_is_per_key_and_exclusive():
    cache = wxqr.MemoryTokenCache()
    held, release = anyio.Event(), anyio.Event()
    done = []

    async def holder():
        async with cache.lock(KEY, timeout=5.0):
            held.set()
            await release.wait()
        done.append("a")

    async def other(name, key):
        async with cache.lock(key, timeout=5.0):
            done.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await held.wait()
        tg.start_soon(other, "b", KEY)  # same key: waits for the holder
        with anyio.fail_after(5):
            await other("c", "wx-other:stable")  # another key: not held up
        await anyio.sleep(0.05)
        assert done == ["c"]
        release.set()
    assert done == ["c", "a", "b"]


async def test_a_counter_lives_exactly_ttl_seconds_from_its_first_increment():
    now = [500.0]
    cache = wxqr.MemoryTokenCache(clock=lambda: now[0])
    assert await cache.incr("forced", 10.0) == 1
    now[0] = 509.9
    assert await cache.incr("forced", 10.0) == 2  # the window is not extended by increments
    now[0] = 510.0  # ttl after the first increment: a new window
    assert await cache.incr("forced", 10.0) == 1
    assert await cache.incr("forced", 10.0, amount=0) == 1  # reading does not count
    now[0] = 519.9
    assert await cache.incr("forced", 10.0, amount=0) == 1
    now[0] = 520.0
    assert await cache.incr("forced", 10.0, amount=0) == 0


class BoundRecordingCache(wxqr.MemoryTokenCache):
    """A cache that notes how long a shared cache's operation may wait (as Redis's do)."""

    def __init__(self, configured: float) -> None:
        super().__init__()
        self.configured = configured
        self.bounds: list[float] = []

    async def get(self, key):
        self.bounds.append(operation_bound(self.configured))
        return await super().get(key)


@pytest.mark.parametrize(
    ("call_timeout", "configured", "bound"),
    [
        pytest.param(0.5, 5.0, 0.5, id="call-shorter-wins"),
        pytest.param(20.0, 5.0, 5.0, id="configured-shorter-wins"),
        pytest.param(5.0, 5.0, 5.0, id="equal"),
    ],
)
async def test_cache_operations_wait_at_most_the_calls_timeout(call_timeout, configured, bound):
    cache = BoundRecordingCache(configured)
    async with FakeWeChat().client(token_cache=cache, timeout=call_timeout) as wx:
        await wx.access_token()
    assert cache.bounds
    assert set(cache.bounds) == {bound}
    # Outside a call nothing shortens the configured bound.
    assert operation_bound(configured) == configured
