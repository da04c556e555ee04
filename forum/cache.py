"""Where rendered pages are kept: a byte-bounded LRU in this process, or Redis for every
worker when FORUM_CACHE_URL=redis://... is set.

A cached page is an `Entry`: a little metadata and the page as parts, where the odd parts
name what each request fills in (the CSRF token, the comment form's signed timestamp).
Keys carry the page versions (services/versions.py), so an entry is never invalidated,
only no longer asked for: the LRU (or Redis's own eviction and a TTL) drops it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)

ENTRY_OVERHEAD = 200  # bytes an entry costs beyond its parts (key, tuple, dict), roughly
REDIS_PREFIX = "forum:page:"


@dataclass(frozen=True)
class Entry:
    parts: tuple[bytes, ...]  # text, name, text, name, ..., text
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.parts) + ENTRY_OVERHEAD

    def fill(self, values: dict[bytes, bytes]) -> bytes:
        """The page with each named part replaced by this request's value."""
        if len(self.parts) == 1:
            return self.parts[0]
        return b"".join(
            part if i % 2 == 0 else values.get(part, b"") for i, part in enumerate(self.parts)
        )

    def names(self) -> set[bytes]:
        return set(self.parts[1::2])

    def dumps(self) -> bytes:
        header = json.dumps({"meta": self.meta, "lens": [len(p) for p in self.parts]})
        return header.encode() + b"\n" + b"".join(self.parts)

    @classmethod
    def loads(cls, data: bytes) -> Entry:
        newline = data.index(b"\n")
        header = json.loads(data[:newline])
        parts, at = [], newline + 1
        for n in header["lens"]:
            parts.append(data[at : at + n])
            at += n
        return cls(tuple(parts), header["meta"])


class Backend(Protocol):
    def get(self, key: str) -> Entry | None: ...
    def set(self, key: str, entry: Entry) -> None: ...
    def clear(self) -> None: ...


def _entry_size(entry: Entry) -> int:
    return entry.size


class MemoryCache:
    """Least recently used entries go first once the entries' bytes pass `max_bytes`.
    Pages by default; `size` tells the bytes of other values (the queue's items)."""

    def __init__(self, max_bytes: int, size: Callable[[Any], int] = _entry_size) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._size = size
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def set(self, key: Hashable, entry: Any) -> None:
        size = self._size(entry)
        if size > self.max_bytes // 4:  # one huge page must not flush everything else
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= self._size(old)
            self._entries[key] = entry
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self.bytes -= self._size(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


class RedisCache:
    """Entries shared by every worker. Redis bounds its own memory (maxmemory with an LRU
    policy); each entry also expires after `ttl` seconds, since newer versions leave old
    keys behind. Redis being down is a miss, never an error page."""

    def __init__(self, url: str, ttl: int, max_entry_bytes: int, prefix: str = "") -> None:
        import redis

        self.prefix = f"{REDIS_PREFIX}{prefix}:"
        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._errors = (redis.RedisError, OSError)
        self.ttl = ttl
        self.max_entry_bytes = max_entry_bytes

    def get(self, key: str) -> Entry | None:
        try:
            data = self._redis.get(self.prefix + key)
        except self._errors as error:
            logger.warning("page cache: Redis get failed: %s", error)
            return None
        return Entry.loads(data) if data else None

    def set(self, key: str, entry: Entry) -> None:
        if entry.size > self.max_entry_bytes:
            return
        try:
            self._redis.set(self.prefix + key, entry.dumps(), ex=self.ttl)
        except self._errors as error:
            logger.warning("page cache: Redis set failed: %s", error)

    def clear(self) -> None:
        try:
            keys = list(self._redis.scan_iter(self.prefix + "*", count=1000))
            if keys:
                self._redis.delete(*keys)
        except self._errors as error:
            logger.warning("page cache: Redis clear failed: %s", error)


class NoCache:
    """PAGE_CACHE_BYTES=0: every page is rendered."""

    def get(self, key: str) -> Entry | None:
        return None

    def set(self, key: str, entry: Entry) -> None:
        return None

    def clear(self) -> None:
        return None


def make_backend(url: str | None, max_bytes: int, ttl: int, prefix: str = "") -> Backend:
    if max_bytes <= 0:
        return NoCache()
    if url:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"FORUM_CACHE_URL must be a redis:// URL, not {url!r}")
        return RedisCache(url, ttl, max_bytes // 4, prefix)
    return MemoryCache(max_bytes)
