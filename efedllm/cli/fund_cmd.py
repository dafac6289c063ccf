"""``efedllm fund``: anyone adds ether to an epoch's reward pool (``RewardPool.fundEpoch``).

The target epoch is decided from the chain's latest block at the moment of sending, never from an epoch or phase
read earlier: a hand-written script once funded a stale epoch that way. An epoch whose funding window is over
(``fundEpoch`` reverts ``EpochClosed`` for epochs before the current one) is refused before anything is sent,
naming the current epoch.
"""

from __future__ import annotations

import argparse

from efedllm.chain import governance
from efedllm.chain.explain import utc
from efedllm.chain.transactions import RevertError
from efedllm.cli.common import add_chain_options, ether, open_protocol
from efedllm.cli.stake_account import wei
from efedllm.errors import EfedError


def register(subparsers) -> None:
    parser = subparsers.add_parser("fund", help="add ETH to an epoch's reward pool (anyone may)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--epoch",
        default=None,
        metavar="E",
        help="fund epoch E, the current one or a later one (default: the current epoch, read "
        "from the latest block when sending)",
    )
    target.add_argument(
        "--next", action="store_true", help="fund the epoch after the current one (default: the current epoch)"
    )
    parser.add_argument("--amount", required=True, metavar="ETH", help="ETH to add to the pool (required, no default)")
    add_chain_options(parser, signs=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    amount = wei(args.amount)
    wanted = governance.epoch_number(args.epoch, what="--epoch") if args.epoch is not None else None
    protocol = open_protocol(args, signs=True)
    me = protocol.signer.address
    clock = governance.now(protocol)
    epoch = wanted if wanted is not None else clock.epoch + 1 if args.next else clock.epoch
    if epoch < clock.epoch:
        raise EfedError(
            f"epoch {epoch} can no longer be funded: its funding window is over; the current epoch is "
            f"{clock.epoch} (block {clock.block}, {utc(clock.timestamp)}): fund --epoch {clock.epoch} "
            f"or later, or leave --epoch out"
        )
    balance = protocol.w3.eth.get_balance(me)
    if balance < amount:
        raise EfedError(f"{me} holds {ether(balance)}, less than the {ether(amount)} to fund")
    try:
        receipt = protocol.tx.send(protocol.pool.functions.fundEpoch(epoch), value=amount, label="fundEpoch")
    except RevertError as exc:
        later = governance.now(protocol)
        if exc.error is None and epoch < later.epoch:  # mined in a block of the next epoch: EpochClosed on chain
            raise EfedError(
                f"{exc}: epoch {epoch} closed before the transaction was mined (the current epoch is "
                f"now {later.epoch}); nothing was funded, only gas spent"
            ) from None
        raise
    size = protocol.pool.functions.poolSize(epoch).call(block_identifier=receipt["blockNumber"])
    print(
        f"funded epoch {epoch} with {ether(amount)} from {me} (tx 0x{bytes(receipt['transactionHash']).hex()}, "
        f"block {receipt['blockNumber']}); the pool of epoch {epoch} now holds {ether(size)}",
        flush=True,
    )
    return 0
