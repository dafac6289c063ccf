"""``efedllm client``: a client's money in Payments (issue 14): what it deposits to pay servers, and taking it back.

Servers that announce a price serve only steps a signed receipt pays for (``efedllm generate --pay``); the
receipts are redeemed from this deposit. A withdrawal waits the deployment's withdrawal delay, so that every
receipt already signed can still be redeemed.
"""

from __future__ import annotations

import argparse

from efedllm.chain.explain import utc
from efedllm.cli.common import add_chain_options, ether, open_protocol
from efedllm.cli.stake_account import wei
from efedllm.errors import EfedError


def register(subparsers) -> None:
    parser = subparsers.add_parser("client", help="a paying client's deposit in Payments: deposit, withdraw, status")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    deposit = actions.add_parser("deposit", help="deposit ETH to pay servers with (efedllm generate --pay)")
    deposit.add_argument("--amount", required=True, metavar="ETH", help="ETH to deposit (required, no default)")
    withdraw = actions.add_parser(
        "withdraw", help="request a withdrawal (--amount), or take what a past request unlocked (no --amount)"
    )
    withdraw.add_argument("--amount", default=None, metavar="ETH", help="ETH to start withdrawing (default: none)")
    status = actions.add_parser("status", help="this account's deposit, pending withdrawal and unlock time")
    for sub in (deposit, withdraw, status):
        add_chain_options(sub, signs=True)
        sub.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=True)
    payments, me = protocol.payments.functions, protocol.signer.address
    if args.action == "deposit":
        amount = wei(args.amount)
        if protocol.w3.eth.get_balance(me) < amount:
            raise EfedError(f"{me} holds less than the {ether(amount)} to deposit")
        protocol.tx.send(payments.deposit(), value=amount, label="deposit")
    elif args.action == "withdraw" and args.amount is not None:
        protocol.tx.send(payments.requestWithdrawal(wei(args.amount)), label="requestWithdrawal")
    elif args.action == "withdraw":
        protocol.tx.send(payments.withdraw(), label="withdraw")
    account = protocol.client_account(me)
    when = f", withdrawable from {utc(account.unlock_time)}" if account.pending else ""
    print(f"{me}: {ether(account.available)} to pay servers with; {ether(account.pending)} being withdrawn{when}")
    return 0
