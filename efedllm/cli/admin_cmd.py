"""``efedllm admin``: the governor's commands (verifier role, parameters, server weights, pause) and rolling over
reward pools nobody earned.

Every argument is checked before anything is sent (addresses, amounts, parameter names), and every transaction of
a command is simulated before the first one is sent, so a refusal (a missing role, a bound, a pause) ends the
command with one line naming the contract's error and what it means, and leaves the chain as it was.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from web3.logs import DISCARD

from efedllm.chain import governance
from efedllm.chain.governance import PARAMETERS, WEIGHT_SETTER
from efedllm.chain.plan import VERIFIER_ROLE_HOLDER
from efedllm.chain.protocol import Protocol
from efedllm.cli.common import add_chain_options, ether, open_protocol, say, table
from efedllm.errors import EfedError


def register(subparsers) -> None:
    parser = subparsers.add_parser("admin", help="governance: verifiers, parameters, weights, pause, pool roll-over")
    commands = parser.add_subparsers(dest="admin_command", required=True, metavar="ACTION")

    for name, text in (
        ("grant-verifier", "grant VERIFIER_ROLE to an address"),
        ("revoke-verifier", "revoke VERIFIER_ROLE from an address"),
    ):
        cmd = commands.add_parser(name, help=text + " (governor)")
        cmd.add_argument("address", metavar="ADDRESS", help="the verifier's address")
        add_chain_options(cmd, signs=True)
        cmd.set_defaults(run=run_verifier, grant=name == "grant-verifier")

    names = ", ".join(f"{p.name} ({p.unit}: {p.help})" for p in PARAMETERS)
    set_ = commands.add_parser(
        "set",
        help="set a protocol parameter within its on-chain bounds (governor)",
        description=f"Parameters: {names}.",
    )
    set_.add_argument("parameter", metavar="PARAM", help="one of: " + ", ".join(p.name for p in PARAMETERS))
    set_.add_argument(
        "value",
        metavar="VALUE",
        help="the new value, in the parameter's unit (ETH, a fraction such as 0.5, seconds or a count)",
    )
    add_chain_options(set_, signs=True)
    set_.set_defaults(run=run_set)

    weight = commands.add_parser("set-weight", help="set a server's weight w_i in eq. 3 (governor)")
    weight.add_argument("server", metavar="SERVER", help="the server's address")
    weight.add_argument("weight", metavar="W", help="the weight, 1.0 being neutral (more than 0, at most 100)")
    add_chain_options(weight, signs=True)
    weight.set_defaults(run=run_set_weight)

    for name, text in (("pause", "stop the state-changing entry points of the contracts"), ("unpause", "lift a pause")):
        cmd = commands.add_parser(name, help=text + " (governor)")
        cmd.add_argument(
            "--contract",
            action="append",
            default=None,
            metavar="NAME",
            help="only this contract (repeatable; default: every pausable contract)",
        )
        add_chain_options(cmd, signs=True)
        cmd.set_defaults(run=run_pause, pause=name == "pause")

    roll = commands.add_parser(
        "roll-over", help="move settled pools that no server earned into the current epoch (anyone may)"
    )
    roll.add_argument("epochs", nargs="*", metavar="EPOCH", help="the settled epochs to roll over")
    roll.add_argument(
        "--all-settled",
        action="store_true",
        help="every settled epoch whose pool nobody earned and that was not rolled over yet "
        "(default: only the EPOCHs given)",
    )
    add_chain_options(roll, signs=True)
    roll.set_defaults(run=run_roll_over)

    roles = commands.add_parser("roles", help="who holds which role on every contract")
    add_chain_options(roles, signs=False)
    roles.set_defaults(run=run_roles)


def run_verifier(args: argparse.Namespace) -> int:
    address = governance.checksummed(args.address, what="ADDRESS")
    protocol = open_protocol(args, signs=True)
    contract = protocol.contract(VERIFIER_ROLE_HOLDER)
    role = contract.functions.VERIFIER_ROLE().call()
    if contract.functions.hasRole(role, address).call() == args.grant:
        say(f"{address} {'already holds' if args.grant else 'does not hold'} VERIFIER_ROLE; nothing sent")
        return 0
    action = "grantRole" if args.grant else "revokeRole"
    send(protocol, [(getattr(contract.functions, action)(role, address), action)])
    say(
        f"{'granted VERIFIER_ROLE to' if args.grant else 'revoked VERIFIER_ROLE from'} {address} "
        f"on {VERIFIER_ROLE_HOLDER}"
    )
    return 0


def run_set(args: argparse.Namespace) -> int:
    param = governance.parameter(args.parameter)
    value = param.parse(args.value)
    protocol = open_protocol(args, signs=True)
    contract = protocol.contract(param.contract)
    read = getattr(contract.functions, param.onchain)().call
    old, new = changed(protocol, read, getattr(contract.functions, param.setter)(value), param.setter)
    say(f"{param.name}: {param.show(old)} -> {param.show(new)} ({param.contract}.{param.setter})")
    return 0


def run_set_weight(args: argparse.Namespace) -> int:
    server = governance.checksummed(args.server, what="SERVER")
    weight = governance.parse_value(args.weight, governance.FRACTION, what="W")
    if weight == 0:
        raise EfedError("W must be more than 0 (1.0 is neutral)")
    protocol = open_protocol(args, signs=True)
    contract_name, setter = WEIGHT_SETTER
    contract = protocol.contract(contract_name)
    read = lambda: protocol.server(server).weight  # noqa: E731 (the registry's record, as `server status` reads it)
    old, new = changed(protocol, read, getattr(contract.functions, setter)(server, weight), setter)
    old_text, new_text = (governance.show_value(w, governance.FRACTION) for w in (old, new))
    say(f"weight of {server}: {old_text} -> {new_text}")
    return 0


def run_pause(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=True)
    names = _contracts(protocol, args.contract)
    verb = "paused" if args.pause else "unpaused"
    todo = [n for n in names if protocol.contract(n).functions.paused().call() != args.pause]
    for name in names:
        if name not in todo:
            say(f"{name} is already {verb}")
    function = "pause" if args.pause else "unpause"
    send(protocol, [(getattr(protocol.contract(n).functions, function)(), f"{n}.{function}") for n in todo])
    if todo:
        say(f"{verb}: {', '.join(todo)}")
    return 0


def run_roll_over(args: argparse.Namespace) -> int:
    if args.all_settled and args.epochs:
        raise EfedError("give EPOCHs or --all-settled, not both")
    if not args.all_settled and not args.epochs:
        raise EfedError("name the EPOCHs to roll over, or pass --all-settled")
    epochs = sorted({governance.epoch_number(e, what="EPOCH") for e in args.epochs})
    protocol = open_protocol(args, signs=True)
    if args.all_settled:
        epochs = governance.rollable_epochs(protocol)
        if not epochs:
            say("no settled pool waits to be rolled over")
            return 0
    for epoch in epochs:
        reason = governance.why_not_rollable(protocol, epoch)
        if reason:
            raise EfedError(f"epoch {epoch} cannot be rolled over: {reason}")
    receipts = send(protocol, [(protocol.pool.functions.rollOver(e), f"rollOver({e})") for e in epochs])
    for receipt in receipts:
        for event in protocol.pool.events.PoolRolledOver().process_receipt(receipt, errors=DISCARD):
            a = event["args"]
            size = protocol.pool.functions.poolSize(a["toEpoch"]).call(block_identifier=receipt["blockNumber"])
            say(
                f"rolled {ether(a['amount'])} over from epoch {a['fromEpoch']} into epoch {a['toEpoch']} "
                f"(its pool now holds {ether(size)})"
            )
    return 0


def run_roles(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=False)
    rows = [[h.contract, h.role, h.holder, h.who] for h in governance.role_holders(protocol)]
    say(table(["contract", "role", "holder", "who"], rows))
    return 0


def send(protocol: Protocol, calls: list) -> list:
    """Simulate every (call, label), then send them in order: a refusal of any one sends none."""
    for call, label in calls:
        protocol.tx.simulate(call, label=label)
    return [protocol.tx.send(call, label=label) for call, label in calls]


def changed(protocol: Protocol, read: Callable[[], int], call, label: str) -> tuple[int, int]:
    """The value ``read`` returns before and after sending ``call`` (simulated first, as by ``send``)."""
    old = read()
    send(protocol, [(call, label)])
    return old, read()


def _contracts(protocol: Protocol, wanted: list[str] | None) -> list[str]:
    names = governance.pausable(protocol)
    if not wanted:
        return names
    by_lower = {n.lower(): n for n in names}
    chosen = []
    for name in wanted:
        if name.lower() not in by_lower:
            raise EfedError(f"--contract {name!r} is not a pausable contract; pausable: {', '.join(names)}")
        chosen.append(by_lower[name.lower()])
    return list(dict.fromkeys(chosen))
