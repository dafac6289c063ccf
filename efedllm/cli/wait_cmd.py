"""``efedllm wait``: block until the chain reaches a point a person building a network by hand waits for.

A network typed in by hand (README, "A network by hand") has steps that only make sense once the chain has moved
on: deploying once the node answers, funding once the servers are on chain, claiming once the epoch settled,
withdrawing once the unbonding period ran out. Guessing with ``sleep`` was how such scripts failed (too short on a
slow machine, or funding an epoch that had already ended); this command reads the chain and returns when it is so,
printing one line. Every condition is read from the latest block, so it follows the chain's clock, not the wall's.
"""

from __future__ import annotations

import argparse
import sys
import time

from efedllm.chain.connection import connect
from efedllm.chain.enums import Outcome, Phase, Status
from efedllm.chain.explain import utc
from efedllm.chain.params import ONE
from efedllm.cli.common import add_chain_options, open_protocol
from efedllm.errors import EfedError

POLL_S = 1.0
ON = {"action": "store_true"}
CONDITIONS: dict[str, dict] = {
    "--chain": {**ON, "help": "until the node at --rpc-url answers"},
    "--servers": {
        "type": int,
        "metavar": "N",
        "help": "until at least N servers are active and every layer is covered",
    },
    "--next-epoch": {
        **ON,
        "help": "until the next epoch starts; prints its number alone (EPOCH=$(efedllm wait --next-epoch))",
    },
    "--settled": {"type": int, "metavar": "E", "help": "until epoch E is settled; prints each server's outcome in it"},
    "--unlocked": {**ON, "help": "until the signer's unbonding stake has unlocked (then `server withdraw` succeeds)"},
}
for _options in CONDITIONS.values():
    _options["help"] += " (default: none; give exactly one of these conditions)"
"""What ``efedllm wait`` can wait for: one of these flags, each the condition of one branch of ``run``."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "wait", help="wait until the chain answers, servers are up, an epoch starts or settles, or stake unlocks"
    )
    what = parser.add_mutually_exclusive_group(required=True)
    for name, options in CONDITIONS.items():
        what.add_argument(name, **options)
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="give up after this many seconds (default: %(default)s)"
    )
    add_chain_options(parser, signs=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    if args.chain:
        _until(lambda: _answers(args.rpc_url), deadline, f"no chain answered at {args.rpc_url}")
        print(f"chain answering at {args.rpc_url}", flush=True)
        return 0
    protocol = open_protocol(args, signs=args.unlocked)
    schedule = protocol.schedule.functions
    if args.servers is not None:

        def ready():
            active = [s for s in protocol.servers() if s.status == Status.ACTIVE]
            return len(active) >= args.servers and not protocol.missing_layers()

        _until(ready, deadline, f"fewer than {args.servers} active servers covering every layer")
        print(f"{args.servers} or more servers active, every layer covered (epoch {protocol.current_epoch()})")
    elif args.next_epoch:
        target = protocol.current_epoch() + 1
        _until(lambda: protocol.current_epoch() >= target, deadline, f"epoch {target} did not start")
        print(f"epoch {target} started", file=sys.stderr)
        print(target, flush=True)
    elif args.settled is not None:
        epoch = args.settled
        if epoch > protocol.current_epoch() + 100:
            raise EfedError(f"epoch {epoch} is far in the future (the current epoch is {protocol.current_epoch()})")
        _until(lambda: Phase(schedule.phase(epoch).call()) == Phase.SETTLED, deadline, f"epoch {epoch} not settled")
        print(f"epoch {epoch} settled; pool {protocol.pool.functions.poolSize(epoch).call() / ONE:g} ETH")
        for s in protocol.servers():
            score = protocol.score_of(epoch, s.address)
            print(f"  {s.address}  layers {s.first_layer}:{s.first_layer + s.num_layers}  {_outcome(score)}")
    else:
        me = protocol.signer.address
        record = protocol.server(me)
        if record.unbonding == 0:
            raise EfedError(f"{me} has no unbonding stake (start unbonding with `efedllm server unstake`)")
        now = lambda: protocol.w3.eth.get_block("latest")["timestamp"]  # noqa: E731
        _until(lambda: now() >= record.unlock_time, deadline, f"stake of {me} still unbonding")
        print(f"{record.unbonding / ONE:g} ETH of {me} unlocked at {utc(record.unlock_time)}: withdraw it")
    return 0


def _outcome(score) -> str:
    if score.outcome == Outcome.NONE:
        return "not scored"
    return f"acc {score.acc / ONE:.4f}, S {score.score / ONE:.4f} -> {score.outcome.label}"


def _answers(url: str) -> bool:
    try:
        connect(url, timeout=2.0)
    except EfedError:
        return False
    return True


def _until(condition, deadline: float, failure: str) -> None:
    while not condition():
        if time.monotonic() > deadline:
            raise EfedError(f"gave up waiting: {failure}")
        time.sleep(POLL_S)
