"""``efedllm server status|stake|unstake|withdraw|declare-loss``: a provider's on-chain account, without loading the
model.

Stake moves through three states: bonded (counts for minStake, slashable), unbonding (after ``unstake``;
still slashable until its unlock time) and withdrawn; stake_account.py has the commands a verifier's account shares.
``status`` shows all of it plus the last trust score and the rewards waiting to be claimed.
"""

from __future__ import annotations

import argparse

from efedllm.chain.params import ONE
from efedllm.chain.protocol import Outcome, Protocol, ServerRecord, Status
from efedllm.cli.common import add_chain_options, ether, open_protocol, say
from efedllm.cli.stake_account import (
    AccountKind,
    Stake,
    fees_text,
    print_rows,
    register_stake_commands,
    rewards_text,
    unbonding_text,
)
from efedllm.cli.stake_account import address as parse_address
from efedllm.errors import EfedError

SERVER = AccountKind(
    noun="server",
    read=lambda protocol, address: _stake(server_record(protocol, address)),
    stake=lambda protocol: protocol.registry.functions.addStake(),
    unstake=lambda protocol, amount: protocol.registry.functions.requestUnstake(amount),
    withdraw=lambda protocol: protocol.registry.functions.withdraw(),
    stake_label="addStake",
    below_minimum="a server left below minStake stops being routed to and paid",
    stake_help="add stake to a registered server (reactivates it at minStake)",
    unstake_help="start unbonding stake; withdraw it after the unbonding period",
    withdraw_help="pay out unbonded stake once its unlock time has passed",
)


def _stake(record: ServerRecord) -> Stake:
    return Stake(record.stake, record.unbonding, record.unlock_time, f", status {record.status.name.lower()}")


def register(commands) -> None:
    status = commands.add_parser("status", help="show a server's on-chain record, last score and pending rewards")
    status.add_argument(
        "--address",
        default=None,
        help="the server to show (default: the signer's address; no key needed with --address)",
    )
    add_chain_options(status, signs=True)
    status.set_defaults(run=run_status)
    register_stake_commands(commands, SERVER)
    loss = commands.add_parser(
        "declare-loss",
        help="declare the records of committed epochs lost (a lost data directory) before their seed is drawn: "
        "those epochs are forfeited (no pay), not slashed; `server run` does it by itself on start",
    )
    loss.add_argument(
        "--epoch", type=int, nargs="+", required=True, metavar="N", help="the epochs (required, no default)"
    )
    add_chain_options(loss, signs=True)
    loss.set_defaults(run=run_declare_loss)


def run_status(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=args.address is None)
    address = parse_address(args.address) if args.address else protocol.signer.address
    record = server_record(protocol, address)
    registry = protocol.registry.functions
    now = protocol.w3.eth.get_block("latest")["timestamp"]
    min_stake = registry.minStake().call()
    print_rows(
        [
            ("server", address),
            ("endpoint", record.endpoint),
            (
                "layers",
                f"{record.first_layer}:{record.first_layer + record.num_layers} ({record.num_layers} of "
                f"{registry.NUM_LAYERS().call()})",
            ),
            ("serving", _serving(protocol, record)),
            ("status", _status(record)),
            ("stake", f"{ether(record.stake)} bonded (minStake {ether(min_stake)})"),
            ("unbonding", unbonding_text(_stake(record), now, "server")),
            ("slashed", f"{record.times_slashed} time(s), {ether(record.total_slashed)} in total"),
            ("last score", _last_score(protocol, address)),
            ("rewards", rewards_text(protocol, address, "server")),
            ("fees", fees_text(protocol, address)),
        ]
    )
    return 0


def run_declare_loss(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=True)
    for epoch in args.epoch:
        protocol.tx.send(protocol.ledger.functions.declareLoss(epoch), label="declareLoss")
        say(
            f"epoch {epoch}: records declared lost; the epoch is forfeited for {protocol.signer.address} (no pay, no slash)"
        )
    return 0


def _serving(protocol: Protocol, record: ServerRecord) -> str:
    """What the server declared, and from when it holds when it does not hold yet (verifiers check an epoch's work
    against the declaration in effect for it)."""
    declared, now = record.serving, protocol.serving_of(record.address, protocol.current_epoch())
    if declared == now:
        return f"{declared.label} (declared on chain; verified as such)"
    return f"{declared.label} from the next epoch; {now.label} in this one"


def check_registration(protocol: Protocol, *, endpoint: str, first: int, count: int, stake: int) -> None:
    """Fail before loading a model when registering would revert (stake below minStake, a bad span, a paused
    registry) or the signer cannot pay the stake: the same call, simulated."""
    me = protocol.signer.address
    check_endpoint_free(protocol, endpoint=endpoint, me=me)
    if server_record(protocol, me, required=False).status != Status.NONE:
        return  # already registered: the server moves its record with updateServer instead
    balance = protocol.w3.eth.get_balance(me)
    if balance < stake:
        raise EfedError(f"{me} holds {ether(balance)}, less than the stake of {ether(stake)} it would register with")
    protocol.tx.simulate(protocol.registry.functions.register(endpoint, first, count), value=stake, label="register")


def same_endpoint(a: str, b: str) -> bool:
    """Whether two announced endpoints name the same server (case and a trailing slash aside)."""
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def check_endpoint_free(protocol: Protocol, *, endpoint: str, me: str) -> None:
    """Refuse an endpoint another active server already announces: clients would reach that server under this
    one's record, and this one would be slashed for the other's answers or absence."""
    for other in protocol.servers():
        if other.address != me and other.status == Status.ACTIVE and same_endpoint(other.endpoint, endpoint):
            raise EfedError(
                f"endpoint {endpoint} is already announced by active server {other.address}; "
                f"give this server its own --port or --public-url"
            )


def server_record(protocol: Protocol, address: str, *, required: bool = True) -> ServerRecord:
    record = protocol.server(address)
    if required and record.status == Status.NONE:
        raise EfedError(
            f"{address} is not registered as a server on this deployment (register with `efedllm server run`)"
        )
    return record


def _status(record: ServerRecord) -> str:
    if record.status == Status.INACTIVE:
        return "inactive: bonded stake below minStake, not routed to or paid (top up with `efedllm server stake`)"
    if record.status == Status.DEACTIVATED:
        return "deactivated: slashed for a trust score below θ; it can only unstake and withdraw"
    return f"active since epoch {record.active_since} (registered in epoch {record.registered_epoch})"


def _last_score(protocol: Protocol, address: str) -> str:
    epoch, score = protocol.last_score(address)
    if score.outcome == Outcome.NONE:
        return "not scored yet"
    return (
        f"epoch {epoch}: acc {score.acc / ONE:.4f}, S {score.score / ONE:.4f} (l {score.num_layers}/max "
        f"{score.max_layers}, {score.verifiers} verifier(s)) -> {score.outcome.label}"
    )
