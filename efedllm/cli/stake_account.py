"""What ``efedllm server`` and ``efedllm verifier`` share about an on-chain account: the ``stake``, ``unstake``,
``withdraw`` and ``claim`` commands, amounts and addresses typed by a person, and the words for unbonding stake
and pending rewards.

A server's stake lives in ServerRegistry and a verifier's in VerifierStakes, but it moves the same way: bonded
(counts for the minimum, slashable), unbonding (after ``unstake``; still slashable until its unlock time) and
withdrawn. Both are paid by the one RewardPool (a server by its reward weight, a verifier its part of the verifier
pot) and claim with the same ``claimRewards`` (efedllm/chain/claims.py). ``AccountKind`` says what differs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from web3 import Web3

from efedllm.chain import explain
from efedllm.chain.explain import utc
from efedllm.chain.params import ETHER
from efedllm.chain.protocol import Protocol
from efedllm.cli.common import add_chain_options, ether, open_protocol, say
from efedllm.errors import EfedError


@dataclass(frozen=True)
class Stake:
    """An account's stake as the commands show it, in wei; ``state`` is what else to say after a change."""

    bonded: int
    unbonding: int
    unlock_time: int
    state: str = ""


@dataclass(frozen=True)
class AccountKind:
    """What differs between a server's and a verifier's stake commands."""

    noun: str
    """The command group: ``efedllm <noun> stake``."""
    read: Callable[[Protocol, str], Stake]
    stake: Callable[[Protocol], Any]
    """The call that bonds msg.value."""
    unstake: Callable[[Protocol, int], Any]
    withdraw: Callable[[Protocol], Any]
    stake_label: str
    """The stake call's name in messages (``addStake reverted: ...``)."""
    below_minimum: str
    """What an account left below its minimum stake can no longer do."""
    stake_help: str
    unstake_help: str
    withdraw_help: str


def register_stake_commands(commands, kind: AccountKind) -> None:
    """``stake``, ``unstake`` and ``withdraw`` under ``commands`` (the subparsers of ``efedllm <noun>``)."""
    stake = commands.add_parser("stake", help=kind.stake_help)
    stake.add_argument("--amount", required=True, metavar="ETH", help="ETH to add (required, no default)")
    add_chain_options(stake, signs=True)
    stake.set_defaults(run=lambda args: run_stake(args, kind))
    unstake = commands.add_parser("unstake", help=kind.unstake_help)
    unstake.add_argument(
        "--amount",
        required=True,
        metavar="ETH",
        help=f"ETH to unbond (required, no default); it stays slashable until it unlocks, and {kind.below_minimum}",
    )
    add_chain_options(unstake, signs=True)
    unstake.set_defaults(run=lambda args: run_unstake(args, kind))
    withdraw = commands.add_parser("withdraw", help=kind.withdraw_help)
    add_chain_options(withdraw, signs=True)
    withdraw.set_defaults(run=lambda args: run_withdraw(args, kind))


def register_claim_command(commands, noun: str, *, help: str, fees: bool = False) -> None:
    """``efedllm <noun> claim``; with ``fees`` (servers) it also withdraws the client fees redeemed in Payments."""
    claim = commands.add_parser("claim", help=help)
    claim.add_argument(
        "--epochs",
        default=None,
        metavar="E,E,...",
        help="claim only these epochs (default: every settled epoch with an unclaimed share)",
    )
    add_chain_options(claim, signs=True)
    claim.set_defaults(run=lambda args: run_claim(args, fees=fees))


def run_stake(args: argparse.Namespace, kind: AccountKind) -> int:
    protocol = open_protocol(args, signs=True)
    amount = wei(args.amount)
    s = _send(protocol, kind, kind.stake(protocol), kind.stake_label, value=amount)
    say(f"staked {ether(amount)}: {kind.noun} {protocol.signer.address} now has {ether(s.bonded)} bonded{s.state}")
    return 0


def run_unstake(args: argparse.Namespace, kind: AccountKind) -> int:
    protocol = open_protocol(args, signs=True)
    s = _send(protocol, kind, kind.unstake(protocol, wei(args.amount)), "requestUnstake")
    say(
        f"unbonding {ether(s.unbonding)} (slashable until it unlocks at {utc(s.unlock_time)}; then run "
        f"`efedllm {kind.noun} withdraw`); {ether(s.bonded)} still bonded{s.state}"
    )
    return 0


def run_withdraw(args: argparse.Namespace, kind: AccountKind) -> int:
    protocol = open_protocol(args, signs=True)
    amount = kind.read(protocol, protocol.signer.address).unbonding
    protocol.tx.send(kind.withdraw(protocol), label="withdraw")
    say(f"withdrew {ether(amount)} to {protocol.signer.address}")
    return 0


def run_claim(args: argparse.Namespace, *, fees: bool = False) -> int:
    from efedllm.chain.claims import claim, withdraw_fees

    protocol = open_protocol(args, signs=True)
    epochs = None
    if args.epochs:
        try:
            epochs = [int(e) for e in args.epochs.split(",")]
        except ValueError:
            raise EfedError(f"--epochs must be comma-separated numbers, got {args.epochs!r}") from None
    claimed, amount = claim(protocol, epochs=epochs)
    withdrawn = withdraw_fees(protocol) if fees else 0
    me = protocol.signer.address
    if claimed:
        say(f"claimed {ether(amount)} for {explain.epochs(claimed)} to {me}")
    if withdrawn:
        say(f"withdrew {ether(withdrawn)} of client fees to {me}")
    if not claimed and not withdrawn:
        say(f"nothing to claim for {me}")
    return 0


def _send(protocol: Protocol, kind: AccountKind, call, label: str, *, value: int = 0) -> Stake:
    """Send the signer's ``call`` (simulated first); its stake as the call left it."""
    protocol.tx.send(call, value=value, label=label)
    return kind.read(protocol, protocol.signer.address)


def rewards_text(protocol: Protocol, address: str, noun: str) -> str:
    """What ``address`` could claim now, and how (a row of ``efedllm <noun> status``)."""
    from efedllm.chain.claims import pending

    epochs, amount = pending(protocol, address)
    if not amount:
        return "nothing to claim"
    return f"{ether(amount)} claimable for {explain.epochs(epochs)}; claim with `efedllm {noun} claim`"


def fees_text(protocol: Protocol, address: str) -> str:
    """A server's price and the client fees it redeemed and has not withdrawn (a row of ``efedllm server status``)."""
    payments = protocol.payments.functions
    price, fees = payments.priceOf(address).call(), payments.feesOf(address).call()
    asked = f"price {price:,} wei per token-layer" if price else "no price announced (serves for free)"
    if not fees:
        return f"{asked}; no client fees to withdraw"
    return f"{asked}; {ether(fees)} of client fees to withdraw with `efedllm server claim`"


def unbonding_text(s: Stake, now: int, noun: str) -> str:
    if s.unbonding == 0:
        return "nothing"
    if now >= s.unlock_time:
        return f"{ether(s.unbonding)}, unlocked since {utc(s.unlock_time)}: `efedllm {noun} withdraw`"
    return f"{ether(s.unbonding)}, unlocks at {utc(s.unlock_time)} (in {s.unlock_time - now}s)"


def print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        say(f"{name.ljust(width)}  {value}")


def wei(text: str) -> int:
    """An ETH amount typed by a person, exactly (no float rounding), in wei."""
    try:
        amount = Decimal(text) * ETHER
    except InvalidOperation:
        raise EfedError(f"--amount must be a number of ETH, got {text!r}") from None
    if amount <= 0 or amount != amount.to_integral_value():
        raise EfedError(f"--amount must be a positive number of ETH with at most 18 decimals, got {text!r}")
    return int(amount)


def address(text: str, flag: str = "--address") -> str:
    """An address typed by a person, checksummed; a one-line error naming ``flag`` otherwise."""
    if not Web3.is_address(text):
        raise EfedError(f"{flag} {text!r} is not an Ethereum address")
    return Web3.to_checksum_address(text)
