"""``POST /openings``: a server reveals one committed task to a verifier, and to nobody else.

Checks, in order, each with its own 4xx: the body parses (400), the request names this server and chain (400), it
has not expired and does not live longer than ``openings.MAX_TTL`` (403), the signature recovers to an address that
holds the verifier role on chain (403), the nonce is new (409: a replay). Only then is the record read. The role
lookup is cached for a short while so that a burst of openings costs one chain call.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from efedllm.chain.protocol import Protocol
from efedllm.http import read_body
from efedllm.openings import CONTENT_TYPE, MAX_TTL, OpeningError, OpeningRequest, encode_opening
from efedllm.server.records import TaskStore
from efedllm.server.sessions import SessionError


@dataclass
class VerifierRoles:
    """Who holds the verifier role, asked of the chain and remembered for ``ttl`` seconds."""

    protocol: Protocol
    ttl: float = 30.0
    _known: dict[str, tuple[bool, float]] = field(default_factory=dict)

    async def holds(self, address: str) -> bool:
        cached = self._known.get(address)
        if cached is not None and time.monotonic() - cached[1] < self.ttl:
            return cached[0]
        loop = asyncio.get_running_loop()
        holds = await loop.run_in_executor(None, self.protocol.is_verifier, address)
        self._known[address] = (holds, time.monotonic())
        return holds


def handler(*, store: TaskStore, roles: VerifierRoles, chain_id: int):
    """The aiohttp handler for ``POST /openings`` of the server whose records ``store`` holds."""

    async def openings(request: web.Request) -> web.Response:
        try:
            req = OpeningRequest.from_json(json.loads(await read_body(request) or b"null"))  # UTF-8, any charset header
        except OpeningError as exc:
            raise SessionError(400, str(exc)) from None
        except (ValueError, RecursionError):  # syntax, bad UTF-8, a number past the digit limit, too deep
            raise SessionError(400, "body must be JSON") from None
        if req.chain_id != chain_id or req.server.lower() != store.server.lower():
            raise SessionError(400, f"this is server {store.server} on chain {chain_id}")
        now = int(time.time())
        if not now <= req.expires <= now + MAX_TTL:
            raise SessionError(403, f"the request has expired or lives longer than {MAX_TTL}s")
        try:
            signer = req.signer()
        except OpeningError as exc:
            raise SessionError(403, str(exc)) from None
        if not await roles.holds(signer):
            raise SessionError(403, f"{signer} does not hold the verifier role")
        if not store.use_nonce(req.nonce, expires=req.expires, now=now):
            raise SessionError(409, "this request was used before (replay)")
        loop = asyncio.get_running_loop()
        opening = await loop.run_in_executor(None, store.opening, req.epoch, req.index)
        if opening is None:
            raise SessionError(404, f"no committed task {req.index} in epoch {req.epoch}")
        return web.Response(body=encode_opening(opening), content_type=CONTENT_TYPE)

    return openings
