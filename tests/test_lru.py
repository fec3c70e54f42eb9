"""The one cache (relight_protocol.lru.LRU): least recently used goes first, a hit refreshes, pins live as long as
their entry, and get_or_make computes a missing value once."""

import gc
import weakref

import pytest

from relight_protocol.lru import LRU


def test_least_recently_used_goes_first_and_a_hit_refreshes():
    c = LRU(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # "b" is now the least recently used
    c.put("c", 3)
    assert "b" not in c and c.get("a") == 1 and c.get("c") == 3 and len(c) == 2
    assert c.get("b", "missing") == "missing"


def test_get_or_make_makes_once_and_pins_live_with_their_entry():
    class Thing:
        pass

    calls = []
    c = LRU(1)
    pinned = Thing()
    ref = weakref.ref(pinned)
    assert c.get_or_make(("k", id(pinned)), lambda: calls.append(1) or "v", pin=pinned) == "v"
    assert c.get_or_make(("k", id(ref())), lambda: calls.append(1) or "w") == "v" and calls == [1]
    del pinned
    gc.collect()
    assert ref() is not None  # the entry keeps the object its key names by id alive
    c.put("other", 0)  # evicts the entry
    gc.collect()
    assert ref() is None


def test_values_where_and_clear():
    c = LRU(4)
    for k in range(3):
        c.put(("x", k), k)
    assert c.values_where(lambda key: key[1] >= 1) == [1, 2]
    c.clear()
    assert len(c) == 0


def test_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        LRU(0)
