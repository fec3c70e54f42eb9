"""The one small cache of the product: a thread-safe least-recently-used map (stdlib only, so the backend and the
add-on share it).

Keys may name arrays by `id()`; an entry then pins those arrays (`pin=`) so that no id in a cached key can be reused
by a new object while the entry lives.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class LRU:
    """At most `size` entries; get() refreshes an entry, put() drops the least recently used beyond `size`."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"an LRU needs a size of at least 1, got {size}")
        self.size = int(size)
        self._entries: OrderedDict[Hashable, tuple[Any, Any]] = OrderedDict()  # key -> (pinned objects, value)
        self._lock = threading.Lock()

    def get(self, key: Hashable, default=None):
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return default
            self._entries.move_to_end(key)
            return hit[1]

    def put(self, key: Hashable, value, pin=None) -> None:
        with self._lock:
            self._entries[key] = (pin, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def get_or_make(self, key: Hashable, make: Callable[[], Any], pin=None):
        """The cached value for `key`, else make() stored under it. make() runs outside the lock: two threads
        missing the same key at once both compute it, and the later one's value is kept."""
        hit = self.get(key, _MISSING)
        if hit is not _MISSING:
            return hit
        value = make()
        self.put(key, value, pin)
        return value

    def values_where(self, predicate: Callable[[Hashable], bool]) -> list:
        """Values of the entries whose key satisfies `predicate`, most recent last (does not refresh them)."""
        with self._lock:
            return [v for k, (_, v) in self._entries.items() if predicate(k)]

    def pop(self, key: Hashable, default=None):
        """Remove `key`; its value, or `default` when absent."""
        with self._lock:
            hit = self._entries.pop(key, None)
            return default if hit is None else hit[1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries


_MISSING = object()
