"""``efedllm verifier status|stake|unstake|withdraw|penalize``: a verifier's stake, without loading the model.

Verifier stake moves as a server's does: bonded (counts for minVerifierStake, slashable), unbonding (after
``unstake``; still slashable until its unlock time) and withdrawn. ``penalize`` slashes another verifier that
committed scores for an epoch without revealing them, or revealed an accuracy more than κ from the median.
"""

from __future__ import annotations

import argparse

from web3 import Web3

from efedllm.chain.explain import utc
from efedllm.chain.governance import epoch_number
from efedllm.chain.protocol import Protocol, VerifierStake
from efedllm.cli.common import add_chain_options, ether, open_protocol, say
from efedllm.cli.server_account import wei
from efedllm.errors import EfedError
from efedllm.verifier.stake import apply_penalty, find_penalties


def register(commands) -> None:
    status = commands.add_parser("status", help="show a verifier's role and stake")
    status.add_argument("--address", default=None, help="the verifier to show (default: the signer's address)")
    add_chain_options(status, signs=True)
    status.set_defaults(run=run_status)
    stake = commands.add_parser("stake", help="bond stake as a verifier (committing scores needs minVerifierStake)")
    stake.add_argument("--amount", required=True, metavar="ETH", help="ETH to add (required, no default)")
    add_chain_options(stake, signs=True)
    stake.set_defaults(run=run_stake)
    unstake = commands.add_parser("unstake", help="start unbonding verifier stake; withdraw it after the period")
    unstake.add_argument(
        "--amount",
        required=True,
        metavar="ETH",
        help="ETH to unbond (required, no default); it stays slashable until it unlocks, and a verifier left below "
        "minVerifierStake can no longer commit scores",
    )
    add_chain_options(unstake, signs=True)
    unstake.set_defaults(run=run_unstake)
    withdraw = commands.add_parser("withdraw", help="pay out unbonded verifier stake once its unlock time has passed")
    add_chain_options(withdraw, signs=True)
    withdraw.set_defaults(run=run_withdraw)
    penalize = commands.add_parser(
        "penalize",
        help="slash a verifier that committed scores without revealing them, or revealed an accuracy more than κ "
        "from a server's median (anyone may, once the epoch's reveals are closed)",
    )
    penalize.add_argument("--epoch", required=True, metavar="N", help="the epoch (required, no default)")
    penalize.add_argument(
        "--verifier", default=None, metavar="ADDRESS", help="the verifier (default: every one that owes a penalty)"
    )
    add_chain_options(penalize, signs=True)
    penalize.set_defaults(run=run_penalize)


def run_status(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=args.address is None)
    address = _address(args.address, "--address") if args.address else protocol.signer.address
    s = protocol.verifier_stake(address)
    minimum = protocol.scoring.functions.minVerifierStake().call()
    now = protocol.w3.eth.get_block("latest")["timestamp"]
    rows = [
        ("verifier", address),
        (
            "role",
            "holds VERIFIER_ROLE" if protocol.is_verifier(address) else "no VERIFIER_ROLE (the governor grants it)",
        ),
        (
            "stake",
            f"{ether(s.bonded)} bonded (minVerifierStake {ether(minimum)}: "
            f"{'may commit scores' if s.bonded >= minimum else 'may not commit scores'})",
        ),
        ("unbonding", _unbonding(s, now)),
        ("slashed", f"{s.times_slashed} time(s), {ether(s.total_slashed)} in total"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        say(f"{name.ljust(width)}  {value}")
    return 0


def run_stake(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=True)
    amount = wei(args.amount)
    s = _send(protocol, protocol.stakes.functions.stake(), "stake", value=amount)
    say(f"staked {ether(amount)}: verifier {protocol.signer.address} now has {ether(s.bonded)} bonded")
    return 0


def run_unstake(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=True)
    s = _send(protocol, protocol.stakes.functions.requestUnstake(wei(args.amount)), "requestUnstake")
    say(
        f"unbonding {ether(s.unbonding)} (slashable until it unlocks at {utc(s.unlock_time)}; then run "
        f"`efedllm verifier withdraw`); {ether(s.bonded)} still bonded"
    )
    return 0


def run_withdraw(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=True)
    amount = protocol.verifier_stake(protocol.signer.address).unbonding
    protocol.tx.send(protocol.stakes.functions.withdraw(), label="withdraw")
    say(f"withdrew {ether(amount)} to {protocol.signer.address}")
    return 0


def run_penalize(args: argparse.Namespace) -> int:
    epoch = epoch_number(args.epoch, what="--epoch")
    verifier = _address(args.verifier, "--verifier") if args.verifier else None
    protocol = open_protocol(args, signs=True)
    penalties = find_penalties(protocol, epoch, verifier=verifier)
    if not penalties:
        who = f"verifier {verifier}" if verifier else "no verifier"
        raise EfedError(
            f"{who} owes no penalty for epoch {epoch}"
            + (
                " (it revealed within κ of every finalized median, never committed, or was penalized already)"
                if verifier
                else ""
            )
        )
    for penalty in penalties:
        amount = apply_penalty(protocol, penalty)
        if amount is None:
            say(f"{penalty.describe()}: already penalized by someone else")
        else:
            say(f"{penalty.describe()}: slashed {ether(amount)}")
    return 0


def _send(protocol: Protocol, call, label: str, *, value: int = 0) -> VerifierStake:
    protocol.tx.send(call, value=value, label=label)
    return protocol.verifier_stake(protocol.signer.address)


def _address(text: str, flag: str) -> str:
    if not Web3.is_address(text):
        raise EfedError(f"{flag} {text!r} is not an Ethereum address")
    return Web3.to_checksum_address(text)


def _unbonding(s: VerifierStake, now: int) -> str:
    if s.unbonding == 0:
        return "nothing"
    if now >= s.unlock_time:
        return f"{ether(s.unbonding)}, unlocked since {utc(s.unlock_time)}: `efedllm verifier withdraw`"
    return f"{ether(s.unbonding)}, unlocks at {utc(s.unlock_time)} (in {s.unlock_time - now}s)"
