"""What this client process measured of each server's speed: the router's evidence, where /info is a claim.

A server reports the decode throughput it measured of itself at start (``/info``), which says nothing of its load
now, its network path to this client, or whether it told the truth. Every decode step a session sends is timed
here, per server and per layer, as a moving average over the process (all sessions, all generations), and
``plan_route`` (client/routing.py) uses it in place of the claim once a server has answered a few steps."""

from __future__ import annotations

import threading

WEIGHT = 0.2
"""Weight of the newest step in the moving average (about the last ten steps count)."""
MIN_STEPS = 3
"""Steps measured before the measurement replaces the server's claim."""


class Latencies:
    def __init__(self):
        self._lock = threading.Lock()
        self._per_layer: dict[str, tuple[float, int]] = {}

    def observe(self, endpoint: str, *, seconds: float, layers: int) -> None:
        """One decode step (one token) over ``layers`` layers of ``endpoint`` took ``seconds``, round trip."""
        sample = seconds / max(layers, 1)
        with self._lock:
            mean, count = self._per_layer.get(endpoint, (sample, 0))
            self._per_layer[endpoint] = (mean + WEIGHT * (sample - mean), count + 1)

    def seconds_per_layer(self) -> dict[str, float]:
        """Measured seconds per layer and token of every server timed at least ``MIN_STEPS`` times."""
        with self._lock:
            return {e: mean for e, (mean, count) in self._per_layer.items() if count >= MIN_STEPS}

    def forget(self, endpoint: str) -> None:
        with self._lock:
            self._per_layer.pop(endpoint, None)


MEASURED = Latencies()
"""This process's measurements, shared by its sessions (``InferenceSession(latencies=...)`` overrides it)."""
