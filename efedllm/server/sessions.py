"""Inference sessions of one server: a KV cache each, bounded in number, length, memory and idle time."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

from efedllm.model.decoder import KVCache
from efedllm.server.config import ServerLimits


class SessionError(Exception):
    """A request that cannot be served for a reason the client can act on; ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Session:
    id: str
    start: int
    """First layer of the server's span this session runs (absolute layer index)."""
    end: int
    cache: KVCache
    length: int = 0
    client: str = ""
    """Who opened it (the peer's address as the server sees it): sessions count against that client's quota."""
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SessionStore:
    def __init__(self, limits: ServerLimits, *, bytes_per_token: int):
        self.limits = limits
        self.bytes_per_token = bytes_per_token
        """KV-cache bytes one token costs across the whole span (keys and values of every layer)."""
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def ids(self) -> set[str]:
        return set(self._sessions)

    @property
    def cached_tokens(self) -> int:
        """Positions allocated across the sessions' caches: whole blocks (model/decoder.py, ``KVCache``)."""
        return sum(KVCache.blocks(s.length) for s in self._sessions.values())

    @property
    def cache_bytes(self) -> int:
        return self.cached_tokens * self.bytes_per_token

    def open(self, start: int, end: int, cache: KVCache, *, client: str = "") -> Session:
        """A new session for ``client``; 429 (busy) when the server holds ``max_sessions`` or this client holds
        ``max_sessions_per_client``, so that one client cannot lock everyone else out for the idle timeout."""
        self.expire()
        if len(self._sessions) >= self.limits.max_sessions:
            raise SessionError(429, f"busy: too many sessions (limit {self.limits.max_sessions}); retry later")
        held = sum(s.client == client for s in self._sessions.values())
        if held >= self.limits.max_sessions_per_client:
            raise SessionError(
                429,
                f"busy: this client holds {held} sessions, the most one client may (max_sessions_per_client); "
                "close some or retry later",
            )
        session = Session(id=secrets.token_hex(16), start=start, end=end, cache=cache, client=client)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionError(404, f"unknown or expired session {session_id[:40]!r}")
        session.last_used = time.monotonic()
        return session

    def reserve(self, session: Session, tokens: int) -> None:
        """Check that ``tokens`` more fit in the session and in the server's cache memory."""
        if session.length + tokens > self.limits.max_sequence:
            raise SessionError(
                413, f"sequence would reach {session.length + tokens} tokens; the limit is {self.limits.max_sequence}"
            )
        grows = KVCache.blocks(session.length + tokens) - KVCache.blocks(session.length)
        if self.cache_bytes + grows * self.bytes_per_token > self.limits.max_cache_bytes:
            raise SessionError(507, "KV-cache memory of this server is full; retry later or use another server")

    def close(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    def expire(self) -> int:
        """Drop sessions idle for longer than the limit; returns how many."""
        cutoff = time.monotonic() - self.limits.session_ttl
        stale = [sid for sid, s in self._sessions.items() if s.last_used < cutoff and not s.lock.locked()]
        for sid in stale:
            del self._sessions[sid]
        return len(stale)
