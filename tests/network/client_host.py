"""A client on a host of its own, driven by a test over its stdin and stdout (one JSON object per line).

    ip netns exec NS python tests/network/client_host.py --rpc-url URL --deployment FILE --timeout S

Each request line ``{"prompt": ..., "max_new_tokens": n, "pause_after": k}`` generates greedily through the
chain's servers. With ``pause_after`` the client stops after its k-th token, reports
``{"paused": [tokens], "route": [...]}`` and waits for any line before going on (so that the test can change
the network at a known point of the generation). Each generation ends with
``{"tokens": [...], "route": [[start, end, endpoint], ...], "failovers": n, "seconds": s}`` or ``{"error": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from efedllm.openmp import OPENMP_ENV

os.environ.update({k: os.environ.get(k, v) for k, v in OPENMP_ENV.items()})  # before torch loads


def say(message: dict) -> None:
    print(json.dumps(message), flush=True)


def route_of(hops) -> list:
    return [[hop.start, hop.end, hop.peer.endpoint] for hop in hops]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rpc-url", required=True)
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args()

    from efedllm.chain.connection import connect
    from efedllm.chain.deployment import Deployment
    from efedllm.chain.protocol import Protocol
    from efedllm.client import DistributedModel

    protocol = Protocol(connect(args.rpc_url), Deployment.load(Path(args.deployment)))
    model = DistributedModel.from_pretrained(protocol=protocol, timeout=args.timeout)
    say({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        pause_after = request.get("pause_after")
        tokens: list[int] = []

        def on_token(token: int, tokens=tokens, pause_after=pause_after) -> None:
            tokens.append(token)
            if len(tokens) == pause_after:
                say({"paused": tokens, "route": route_of(model.current_session.route)})
                sys.stdin.readline()

        started = time.monotonic()
        try:
            ids = model.generate(
                prompt=request["prompt"], max_new_tokens=request["max_new_tokens"], eos_token_id=[], on_token=on_token
            )
        except Exception as exc:  # noqa: BLE001 - reported to the test, which decides
            say({"error": f"{exc.__class__.__name__}: {exc}"})
            continue
        say(
            {
                "tokens": ids[0].tolist(),
                "route": route_of(model.last_route),
                "failovers": model.last_failovers,
                "seconds": time.monotonic() - started,
            }
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
