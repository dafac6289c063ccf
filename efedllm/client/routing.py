"""Choosing which servers carry a request: the cheapest chain of hops that covers layers [start, end).

Each hop runs a server from a layer inside its span to the end of its span (or to ``end``). The estimated
cost of a hop is a fixed network latency plus the layers it runs times the server's time per layer, scaled up
for servers with a lower trust score, plus its price turned into seconds (``WEI_PER_SECOND``); a dynamic programme
over layer positions finds the cheapest chain. A server's time per layer is what this client measured of it
(client/latency.py: round trips included) once it has, and until then the throughput the server claims.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from efedllm.errors import EfedError
from efedllm.layers import compact_layers

HOP_LATENCY_S = 0.002
WEI_PER_SECOND = 10**12
"""What a second of a token's latency is worth to a client: the planner adds price x layers / this to a hop's time,
so that a cheaper server wins between servers of similar speed and trust."""


@dataclass(frozen=True)
class Peer:
    endpoint: str
    first: int
    end: int
    decode_tokens_per_s: float = 1.0
    trust: float = 1.0
    """Last trust score S_i in [0, 1] (1.0 when unknown)."""
    address: str | None = None
    price: int = 0
    """Wei per token and layer (announced on chain, Payments.priceOf)."""
    serving: str = "float32"
    """How it computes, as declared on chain (``bfloat16``, ``int8/float32``...; verifier/rules.py)."""

    def seconds_per_layer(self) -> float:
        return 1.0 / max(self.decode_tokens_per_s, 1e-6) / max(self.end - self.first, 1)


@dataclass(frozen=True)
class Hop:
    peer: Peer
    start: int
    end: int


class NoRouteError(EfedError):
    def __init__(self, missing: list[int]):
        super().__init__(
            f"no route covers every layer: no reachable active server serves layers {compact_layers(missing)}"
        )
        self.missing = missing


def plan_route(
    peers: Iterable[Peer], start: int, end: int, *, measured: Mapping[str, float] | None = None
) -> list[Hop]:
    """The cheapest chain of hops over layers [start, end); raises NoRouteError naming uncovered layers.
    ``measured``: seconds per layer and token that the client measured, by endpoint (it overrides the claim; the
    fixed hop latency is then already in it)."""
    peers = list(peers)
    measured = measured or {}
    missing = [layer for layer in range(start, end) if not any(p.first <= layer < p.end for p in peers)]
    if missing:
        raise NoRouteError(missing)
    best: dict[int, tuple[float, list[Hop]]] = {end: (0.0, [])}
    for position in range(end - 1, start - 1, -1):
        options = []
        for peer in peers:
            if peer.first <= position < peer.end:
                stop = min(peer.end, end)
                layers = stop - position
                seen = measured.get(peer.endpoint)
                per_layer = seen if seen is not None else peer.seconds_per_layer()
                cost = (0.0 if seen is not None else HOP_LATENCY_S) + layers * per_layer / (0.5 + 0.5 * peer.trust)
                cost += layers * peer.price / WEI_PER_SECOND
                rest_cost, rest = best[stop]
                options.append((cost + rest_cost, [Hop(peer, position, stop), *rest]))
        best[position] = min(options, key=lambda option: option[0])
    return best[start][1]
