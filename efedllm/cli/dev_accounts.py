"""The funded accounts of a local development node, shown when ``efedllm chain up`` starts one.

Anvil and Ganache (deterministic) derive their accounts from a mnemonic printed in every tutorial, so their private keys are public: fine for a
local chain, and a loss of funds anywhere else. The listing says so when the node's accounts are those.
"""

from __future__ import annotations

from functools import cache

from eth_account import Account
from web3 import Web3

from efedllm.chain.connection import connect
from efedllm.chain.explain import ether
from efedllm.chain.node import DEV_MNEMONICS

PUBLIC_MNEMONICS = {kind.capitalize(): mnemonic for kind, mnemonic in DEV_MNEMONICS.items()}
"""Mnemonics whose keys everyone knows, by the node that uses them by default."""


@cache
def public_addresses(mnemonic: str, count: int) -> tuple[str, ...]:
    Account.enable_unaudited_hdwallet_features()
    return tuple(Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}").address for i in range(count))


def dev_accounts_report(url: str) -> str:
    """Lines listing the node's unlocked accounts (index, address, balance), saying whose keys are public."""
    w3 = connect(url)
    accounts = [Web3.to_checksum_address(a) for a in w3.eth.accounts]
    lines = [f"{len(accounts)} unlocked dev accounts (sign as one with --node-account N):"]
    for i, address in enumerate(accounts):
        lines.append(f"  ({i}) {address}  {ether(w3.eth.get_balance(address))}")
    for node, mnemonic in PUBLIC_MNEMONICS.items():
        if accounts and tuple(accounts) == public_addresses(mnemonic, len(accounts)):
            lines.append(
                f'these are {node}\'s well-known test accounts (mnemonic "{mnemonic}"): their private keys '
                f"are public; never send real funds to them or use them on another chain"
            )
    return "\n".join(lines)
