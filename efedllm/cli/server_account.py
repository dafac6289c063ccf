"""``efedllm server status|stake|unstake|withdraw|declare-loss``: a provider's on-chain account, without loading the
model.

Stake moves through three states: bonded (counts for minStake, slashable), unbonding (after ``unstake``;
still slashable until its unlock time) and withdrawn. ``status`` shows all of it plus the last trust score
and the rewards waiting to be claimed.
"""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

from web3 import Web3

from efedllm.chain import explain
from efedllm.chain.explain import utc
from efedllm.chain.params import ETHER, ONE
from efedllm.chain.protocol import Outcome, Protocol, ServerRecord, Status
from efedllm.cli.common import add_chain_options, ether, open_protocol, say
from efedllm.errors import EfedError


def register(commands) -> None:
    status = commands.add_parser("status", help="show a server's on-chain record, last score and pending rewards")
    status.add_argument(
        "--address",
        default=None,
        help="the server to show (default: the signer's address; no key needed with --address)",
    )
    add_chain_options(status, signs=True)
    status.set_defaults(run=run_status)
    stake = commands.add_parser("stake", help="add stake to a registered server (reactivates it at minStake)")
    stake.add_argument("--amount", required=True, metavar="ETH", help="ETH to add (required, no default)")
    add_chain_options(stake, signs=True)
    stake.set_defaults(run=run_stake)
    unstake = commands.add_parser("unstake", help="start unbonding stake; withdraw it after the unbonding period")
    unstake.add_argument(
        "--amount",
        required=True,
        metavar="ETH",
        help="ETH to unbond (required, no default); it stays slashable until it unlocks, and "
        "a server left below minStake stops being routed to and paid",
    )
    add_chain_options(unstake, signs=True)
    unstake.set_defaults(run=run_unstake)
    withdraw = commands.add_parser("withdraw", help="pay out unbonded stake once its unlock time has passed")
    add_chain_options(withdraw, signs=True)
    withdraw.set_defaults(run=run_withdraw)
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
    from efedllm.server.rewards import claimable_epochs

    protocol = open_protocol(args, signs=args.address is None)
    address = _address(args.address) if args.address else protocol.signer.address
    record = server_record(protocol, address)
    registry = protocol.registry.functions
    now = protocol.w3.eth.get_block("latest")["timestamp"]
    min_stake = registry.minStake().call()
    rows = [
        ("server", address),
        ("endpoint", record.endpoint),
        (
            "layers",
            f"{record.first_layer}:{record.first_layer + record.num_layers} ({record.num_layers} of "
            f"{registry.NUM_LAYERS().call()})",
        ),
        ("status", _status(record)),
        ("stake", f"{ether(record.stake)} bonded (minStake {ether(min_stake)})"),
        ("unbonding", _unbonding(record, now)),
        ("slashed", f"{record.times_slashed} time(s), {ether(record.total_slashed)} in total"),
        ("last score", _last_score(protocol, address)),
    ]
    epochs = claimable_epochs(protocol, address)
    pending = protocol.pool.functions.pendingRewards(address, epochs).call() if epochs else 0
    rows.append(
        (
            "rewards",
            f"{ether(pending)} claimable for {explain.epochs(epochs)}; claim with `efedllm server claim`"
            if pending
            else "nothing to claim",
        )
    )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        say(f"{name.ljust(width)}  {value}")
    return 0


def run_stake(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=True)
    amount = wei(args.amount)
    record = _send(protocol, protocol.registry.functions.addStake(), "addStake", value=amount)
    say(
        f"added {ether(amount)}: {protocol.signer.address} now has {ether(record.stake)} bonded, "
        f"status {record.status.name.lower()}"
    )
    return 0


def run_unstake(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=True)
    record = _send(protocol, protocol.registry.functions.requestUnstake(wei(args.amount)), "requestUnstake")
    say(
        f"unbonding {ether(record.unbonding)} (slashable until it unlocks at {utc(record.unlock_time)}; then run "
        f"`efedllm server withdraw`); {ether(record.stake)} still bonded, status {record.status.name.lower()}"
    )
    return 0


def run_withdraw(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=True)
    amount = server_record(protocol, protocol.signer.address).unbonding
    protocol.tx.send(protocol.registry.functions.withdraw(), label="withdraw")
    say(f"withdrew {ether(amount)} to {protocol.signer.address}")
    return 0


def run_declare_loss(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=True)
    for epoch in args.epoch:
        protocol.tx.send(protocol.ledger.functions.declareLoss(epoch), label="declareLoss")
        say(
            f"epoch {epoch}: records declared lost; the epoch is forfeited for {protocol.signer.address} (no pay, no slash)"
        )
    return 0


def _send(protocol: Protocol, call, label: str, *, value: int = 0) -> ServerRecord:
    """Send the signer's ``call`` (simulated first); its server record as the call left it."""
    protocol.tx.send(call, value=value, label=label)
    return server_record(protocol, protocol.signer.address)


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


def wei(text: str) -> int:
    """An ETH amount typed by a person, exactly (no float rounding), in wei."""
    try:
        amount = Decimal(text) * ETHER
    except InvalidOperation:
        raise EfedError(f"--amount must be a number of ETH, got {text!r}") from None
    if amount <= 0 or amount != amount.to_integral_value():
        raise EfedError(f"--amount must be a positive number of ETH with at most 18 decimals, got {text!r}")
    return int(amount)


def _address(text: str) -> str:
    if not Web3.is_address(text):
        raise EfedError(f"--address {text!r} is not an Ethereum address")
    return Web3.to_checksum_address(text)


def _status(record: ServerRecord) -> str:
    if record.status == Status.INACTIVE:
        return "inactive: bonded stake below minStake, not routed to or paid (top up with `efedllm server stake`)"
    if record.status == Status.DEACTIVATED:
        return "deactivated: slashed for a trust score below θ; it can only unstake and withdraw"
    return f"active since epoch {record.active_since} (registered in epoch {record.registered_epoch})"


def _unbonding(record: ServerRecord, now: int) -> str:
    if record.unbonding == 0:
        return "nothing"
    if now >= record.unlock_time:
        return f"{ether(record.unbonding)}, unlocked since {utc(record.unlock_time)}: `efedllm server withdraw`"
    return f"{ether(record.unbonding)}, unlocks at {utc(record.unlock_time)} (in {record.unlock_time - now}s)"


def _last_score(protocol: Protocol, address: str) -> str:
    epoch, score = protocol.last_score(address)
    if score.outcome == Outcome.NONE:
        return "not scored yet"
    return (
        f"epoch {epoch}: acc {score.acc / ONE:.4f}, S {score.score / ONE:.4f} (l {score.num_layers}/max "
        f"{score.max_layers}, {score.verifiers} verifier(s)) -> {score.outcome.label}"
    )
