"""``efedllm verifier status|stake|unstake|withdraw|claim|penalize``: a verifier's stake, pay and other verifiers'
penalties, without loading the model.

Verifier stake moves as a server's does (stake_account.py has the commands both share): bonded (counts for
minVerifierStake, slashable), unbonding (after ``unstake``; still slashable until its unlock time) and withdrawn.
A verifier that revealed its scores, and was not found more than κ from a median when the epoch was finalized, is
paid an equal part of the epoch's verifier pot: ``claim`` pulls it (``verifier run`` claims by itself).
``penalize`` slashes another verifier that committed scores for an epoch without revealing them, or committed a
seed share and withheld it (a reveal more than κ from a median is slashed by ``finalize`` itself).
"""

from __future__ import annotations

import argparse

from efedllm.chain.governance import epoch_number
from efedllm.chain.params import ONE
from efedllm.chain.protocol import VerifierStake
from efedllm.cli.common import add_chain_options, ether, open_protocol, say
from efedllm.cli.stake_account import (
    AccountKind,
    Stake,
    print_rows,
    register_claim_command,
    register_stake_commands,
    rewards_text,
    unbonding_text,
)
from efedllm.cli.stake_account import address as parse_address
from efedllm.errors import EfedError
from efedllm.verifier.stake import apply_penalty, find_penalties


def _stake(s: VerifierStake) -> Stake:
    return Stake(s.bonded, s.unbonding, s.unlock_time)


VERIFIER = AccountKind(
    noun="verifier",
    read=lambda protocol, address: _stake(protocol.verifier_stake(address)),
    stake=lambda protocol: protocol.stakes.functions.stake(),
    unstake=lambda protocol, amount: protocol.stakes.functions.requestUnstake(amount),
    withdraw=lambda protocol: protocol.stakes.functions.withdraw(),
    stake_label="stake",
    below_minimum="a verifier left below minVerifierStake can no longer commit scores or seed shares",
    stake_help="bond stake as a verifier (committing scores needs minVerifierStake)",
    unstake_help="start unbonding verifier stake; withdraw it after the period",
    withdraw_help="pay out unbonded verifier stake once its unlock time has passed",
)


def register(commands) -> None:
    status = commands.add_parser("status", help="show a verifier's role, stake and pay waiting to be claimed")
    status.add_argument("--address", default=None, help="the verifier to show (default: the signer's address)")
    add_chain_options(status, signs=True)
    status.set_defaults(run=run_status)
    register_stake_commands(commands, VERIFIER)
    register_claim_command(
        commands,
        "verifier",
        help="claim this verifier's pay (its part of each settled epoch's verifier pot); `verifier run` claims "
        "by itself",
    )
    penalize = commands.add_parser(
        "penalize",
        help="slash a verifier that committed scores without revealing them (once the epoch's reveals are closed), "
        "or committed a seed share and did not reveal it before the seed was drawn (anyone may)",
    )
    penalize.add_argument("--epoch", required=True, metavar="N", help="the epoch (required, no default)")
    penalize.add_argument(
        "--verifier", default=None, metavar="ADDRESS", help="the verifier (default: every one that owes a penalty)"
    )
    add_chain_options(penalize, signs=True)
    penalize.set_defaults(run=run_penalize)


def run_status(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=args.address is None)
    address = parse_address(args.address) if args.address else protocol.signer.address
    s = protocol.verifier_stake(address)
    minimum = protocol.scoring.functions.minVerifierStake().call()
    share = protocol.pool.functions.VERIFIER_SHARE().call()
    now = protocol.w3.eth.get_block("latest")["timestamp"]
    print_rows(
        [
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
            ("unbonding", unbonding_text(_stake(s), now, "verifier")),
            ("slashed", f"{s.times_slashed} time(s), {ether(s.total_slashed)} in total"),
            (
                "rewards",
                f"{rewards_text(protocol, address, 'verifier')} (verifiers share {share / ONE:.2%} of each pool)",
            ),
        ]
    )
    return 0


def run_penalize(args: argparse.Namespace) -> int:
    epoch = epoch_number(args.epoch, what="--epoch")
    verifier = parse_address(args.verifier, "--verifier") if args.verifier else None
    protocol = open_protocol(args, signs=True)
    penalties = find_penalties(protocol, epoch, verifier=verifier)
    if not penalties:
        who = f"verifier {verifier}" if verifier else "no verifier"
        raise EfedError(
            f"{who} owes no penalty for epoch {epoch}"
            + (
                " (it revealed its scores and its seed share, never committed, or was penalized already)"
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
