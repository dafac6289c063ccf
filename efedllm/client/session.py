"""An inference session across a route of servers, with failover.

Each hop keeps the hidden states it was sent. When a server fails (unreachable, timed out, overloaded, or its
session expired), the client marks it bad, plans a new route for that hop's layers from the remaining peers,
opens sessions there, replays the hop's whole input history to rebuild their KV caches, and carries on: the
output is the same, only later. Bad requests (4xx other than those) are the client's own bug and are raised.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
import torch

from efedllm.client.answers import AnswerChecker
from efedllm.client.latency import MEASURED, Latencies
from efedllm.client.lockstep import LOCKSTEP, Group, Lockstep
from efedllm.client.payments import Payer
from efedllm.client.routing import Hop, NoRouteError, Peer, plan_route
from efedllm.client.spotcheck import Dispute, SpotChecker
from efedllm.client.steps import send_step
from efedllm.errors import EfedError
from efedllm.rpc.client import (  # noqa: F401 - RETRYABLE_STATUS, CONNECT_TIMEOUT_S: re-exported for callers
    CONNECT_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    RETRYABLE_STATUS,
    ServerClient,
    ServerFailure,
    ServerRefused,
)
from efedllm.verifier.checks import deviation

log = logging.getLogger("efedllm.client")

BUSY_WAIT_S = 120.0
"""How long a client waits, in all, for a busy server (429) to free a session slot before it gives up."""
BUSY_BACKOFF_S, BUSY_BACKOFF_MAX_S = 0.5, 8.0
"""First pause between tries while every server of some layers is busy, and the longest (doubling)."""


@dataclass
class RemoteHop:
    hop: Hop
    session_id: str
    history: list[torch.Tensor] = field(default_factory=list)


class InferenceSession:
    def __init__(
        self,
        peers: list[Peer],
        num_layers: int,
        *,
        http: requests.Session | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
        max_failovers: int = 8,
        busy_wait: float = BUSY_WAIT_S,
        answers: AnswerChecker | None = None,
        payer: Payer | None = None,
        spot: SpotChecker | None = None,
        latencies: Latencies = MEASURED,
        lockstep: Lockstep = LOCKSTEP,
    ):
        self.peers = list(peers)
        self.latencies = latencies
        """Each decode step's round trip per server, shared by the process's sessions; routes follow it."""
        self.lockstep = lockstep
        """Sends this session's decode steps together with the process's other sessions' (client/lockstep.py)."""
        self.answers = answers
        """Checks every answer's signature and keeps the signed answers (None: unchecked, e.g. servers given by
        URL, whose addresses no chain vouches for)."""
        self.payer = payer
        """Pays each step of a priced server with a signed receipt (None: the client pays nothing)."""
        if payer is not None:
            payer.start()
        self.spot = spot if answers is not None else None
        """Now and then sends a step to a second server of the same layers and compares (client/spotcheck.py)."""
        self.num_layers = num_layers
        self.http = http or requests.Session()
        if not timeout > 0:
            raise EfedError(f"the request timeout must be positive, not {timeout}")
        self.timeout = (min(CONNECT_TIMEOUT_S, timeout), timeout)
        """(connect, read) seconds for each request to a server."""
        self.clients: dict[str, ServerClient] = {}
        self.failed: set[str] = set()
        self.failovers = 0
        self.max_failovers = max_failovers
        self.busy_wait = busy_wait
        """Seconds to keep retrying while every server of some layers is busy (429) before giving up."""
        self.hops: list[RemoteHop] = self._reroute(0, num_layers, [], last=None)
        self.arrived_with = 1
        """How many sessions' steps (this one's included) the last hop of the last step answered together: they
        reach the LM head together, and it runs them as one batch (model/head.py ``next_logits(together=)``)."""

    @property
    def route(self) -> list[Hop]:
        return [h.hop for h in self.hops]

    @property
    def history_tokens(self) -> list[int]:
        """Token count of each step sent so far (the first hop's inputs)."""
        return [t.shape[1] for t in self.hops[0].history] if self.hops else []

    def step(self, hidden: torch.Tensor) -> torch.Tensor:
        """Run new hidden states through every layer, failing over as needed. A decode step (one token) goes to
        each server together with the process's other sessions' steps for it (client/lockstep.py)."""
        decode = hidden.shape[1] == 1
        if not decode:  # a prefill: its decode steps come next; the process's other sessions wait for them
            self.lockstep.coming(id(self), self._lockstep_route())
        i = 0
        while i < len(self.hops):
            remote = self.hops[i]
            group = self.lockstep.arrive(id(self), self._lockstep_route(), i) if decode else None
            try:
                output = self._forward(remote, hidden, group=group)
            except ServerFailure as exc:
                self.lockstep.leave(id(self))  # replaying on new servers: nobody waits for it meanwhile
                self._fail_over(i, exc)
                continue  # retry position i with the replacement hops
            if decode:
                self.lockstep.answered(id(self), self._lockstep_route(), i)
            self.arrived_with = group.size if group is not None else 1
            remote.history.append(hidden)
            if self.spot is not None and self.spot.due():
                self._spot_check(remote, output)
            hidden = output
            i += 1
        return hidden

    def _spot_check(self, remote: RemoteHop, output: torch.Tensor) -> None:
        """Run ``remote``'s history on another server of its layers and compare the last step's output; a
        mismatch is kept in ``spot.disputes`` (both signed answers) for the verifiers."""
        hop, first = remote.hop, self.answers.kept[-1]
        others = [
            p
            for p in self.peers
            if p.endpoint not in self.failed
            and p.endpoint != hop.peer.endpoint
            and p.first <= hop.start < hop.end <= p.end
            and p.serving == hop.peer.serving  # another precision differs by its rounding, not by cheating
        ]
        if not others:
            return
        peer = self.spot.rng.choice(others)
        second = None
        try:
            second = self._open(Hop(peer=peer, start=hop.start, end=hop.end))
            theirs = self._forward(second, torch.cat(remote.history, dim=1))[:, -output.shape[1] :]
        except ServerFailure as exc:
            log.warning("spot check on %s failed (%s); the step stands", peer.endpoint, exc)
            return
        finally:
            if second is not None:
                self._client(peer).close(second.session_id)
        self.spot.checks += 1
        error = deviation(theirs, output)
        if not error <= self.spot.config.spot_tolerance:
            log.warning(
                "spot check: %s and %s disagree on layers %d:%d by %.2e; both answers go to the verifiers",
                hop.peer.endpoint,
                peer.endpoint,
                hop.start,
                hop.end,
                error,
            )
            self.spot.disputes.append(Dispute(first=first, second=self.answers.kept[-1], deviation=error))

    def close(self) -> None:
        self.lockstep.leave(id(self))
        for remote in self.hops:
            self._client(remote.hop.peer).close(remote.session_id)

    # ------------------------------------------------------------------ internals

    def _lockstep_route(self) -> list[tuple[str, int]]:
        return [(h.hop.peer.endpoint, h.hop.start) for h in self.hops]

    def _fail_over(self, index: int, exc: ServerFailure) -> None:
        """Replace hop ``index`` by a new route over its layers, rebuilt from its input history."""
        remote = self.hops[index]
        log.warning(
            "server %s failed (%s); re-routing layers %d:%d", exc.endpoint, exc, remote.hop.start, remote.hop.end
        )
        self._mark_failed(exc)
        self.hops[index : index + 1] = self._reroute(remote.hop.start, remote.hop.end, remote.history, last=exc)

    def _reroute(
        self, start: int, end: int, history: list[torch.Tensor], *, last: ServerFailure | None
    ) -> list[RemoteHop]:
        """Hops over layers [start, end) on servers not known to have failed, with ``history`` replayed.

        A server that answers 429 (its session limit, or this client's share of it) is busy, not failed: it is
        left out of this plan only, and when every server of some layer is busy the client waits (exponential
        backoff up to ``busy_wait`` seconds in all) and tries again, saying so, rather than giving up with "no
        reachable server"."""
        busy: set[str] = set()
        waited, pause = 0.0, BUSY_BACKOFF_S
        while True:
            if self.failovers > self.max_failovers:
                raise EfedError(f"gave up after {self.max_failovers} failovers; last failure: {last}")
            alive = [p for p in self.peers if p.endpoint not in self.failed and p.endpoint not in busy]
            try:
                route = plan_route(alive, start, end, measured=self.latencies.seconds_per_layer())
            except NoRouteError:
                if not busy or not any(p.endpoint not in self.failed for p in self.peers):
                    raise  # names the missing layers
                if waited >= self.busy_wait:
                    raise EfedError(
                        f"busy: every server that could serve layers {start}:{end} held its limit of sessions for "
                        f"{waited:.0f} s; try again later"
                    ) from None
                log.warning("busy: %d server(s) at their session limit; retrying in %.1f s", len(busy), pause)
                time.sleep(pause)
                waited += pause
                pause = min(pause * 2, BUSY_BACKOFF_MAX_S)
                busy.clear()
                continue
            try:
                return self._rebuild(route, history)
            except ServerFailure as again:
                if again.status == 429:
                    busy.add(again.endpoint)
                    continue
                log.warning("server %s failed too (%s)", again.endpoint, again)
                self._mark_failed(again)
                last = again

    def _mark_failed(self, exc: ServerFailure) -> None:
        self.failed.add(exc.endpoint)
        self.failovers += 1

    def _rebuild(self, route: list[Hop], history: list[torch.Tensor]) -> list[RemoteHop]:
        """Open sessions along ``route`` and replay ``history`` through them, hop after hop."""
        replay = torch.cat(history, dim=1) if history else None
        rebuilt = []
        if replay is None and len(route) > 1:  # nothing to replay: open every hop's session at once
            return self._open_all(route)
        try:
            for hop in route:
                remote = self._open(hop)
                rebuilt.append(remote)
                if replay is not None:
                    output = self._forward(remote, replay)
                    remote.history.append(replay)
                    replay = output
        except ServerFailure:
            for remote in rebuilt:  # give back what this attempt took: a busy network needs every slot
                self._client(remote.hop.peer).close(remote.session_id)
            raise
        return rebuilt

    def _open_all(self, route: list[Hop]) -> list[RemoteHop]:
        """Sessions on every hop of ``route``, opened in parallel (one round trip before the first token, not one
        per hop); if any fails, the others are closed and its error (ServerFailure: route around it) raised."""
        for hop in route:
            self._client(hop.peer)  # created here, not by racing threads
        with ThreadPoolExecutor(max_workers=len(route)) as pool:
            futures = [pool.submit(self._open, hop) for hop in route]
        opened, failure = [], None
        for future in futures:
            try:
                opened.append(future.result())
            except Exception as exc:  # noqa: BLE001 - ServerFailure (failover) or a refusal: raised below either way
                failure = failure or exc
        if failure is not None:
            for remote in opened:
                self._client(remote.hop.peer).close(remote.session_id)
            raise failure
        return opened

    def _client(self, peer: Peer) -> ServerClient:
        if peer.endpoint not in self.clients:
            self.clients[peer.endpoint] = ServerClient(peer.endpoint, http=self.http, timeout=self.timeout[1])
        return self.clients[peer.endpoint]

    def _open(self, hop: Hop) -> RemoteHop:
        return RemoteHop(hop, self._client(hop.peer).open_session(hop.start, hop.end).session)

    def _forward(self, remote: RemoteHop, hidden: torch.Tensor, *, group: Group | None = None) -> torch.Tensor:
        hop = remote.hop
        began = time.monotonic()
        output = send_step(
            self._client(hop.peer),
            peer=hop.peer,
            session=remote.session_id,
            start=hop.start,
            end=hop.end,
            past=sum(h.shape[1] for h in remote.history),
            hidden=hidden,
            answers=self.answers,
            payer=self.payer,
            group=(group, id(self)) if group is not None else None,
        )
        if hidden.shape[1] == 1:  # decode steps are comparable across servers; prefills and replays vary in length
            self.latencies.observe(hop.peer.endpoint, seconds=time.monotonic() - began, layers=hop.end - hop.start)
        return output
