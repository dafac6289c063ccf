"""Connecting to an EVM JSON-RPC endpoint and loading the key that signs for this process.

Keys never come from a command-line argument (it would land in shell history): they come from the
environment ($EFEDLLM_PRIVATE_KEY), from an encrypted keystore file (password from
$EFEDLLM_KEYSTORE_PASSWORD or a prompt), or, on a local development node, from one of the node's own
unlocked accounts.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import Web3Exception

from efedllm.errors import EfedError

KEY_ENV = "EFEDLLM_PRIVATE_KEY"
KEYSTORE_PASSWORD_ENV = "EFEDLLM_KEYSTORE_PASSWORD"
DEFAULT_RPC_URL = "http://127.0.0.1:8545"


RPC_TIMEOUT_S = 120.0
"""Seconds one RPC request may take before it fails. Ganache answering seven processes starting at once on a busy
2-core machine (each loading torch and a model, then timing its layers) took over 10 s, and then over 30 s (the
previous limit): a transaction the node signs (``eth_sendTransaction``) returns only once mined, and a starting
verifier died of it in a full test run on 2026-12-07 (a starting server in another run). A node that is down is refused at once, not
waited for; a hung one is reported after this long."""


def connect(rpc_url: str, *, timeout: float = RPC_TIMEOUT_S) -> Web3:
    """A Web3 connected to ``rpc_url``; raises EfedError when nothing answers there. ``timeout``: seconds one
    request may take (``RPC_TIMEOUT_S`` says why it is long)."""
    if not rpc_url.lower().startswith(("http://", "https://")):
        raise EfedError(f"the RPC URL {rpc_url} needs a scheme: http://{rpc_url.split('://')[-1]}")
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        _ = w3.eth.chain_id  # the first request: fails here when nothing answers
    except (OSError, Web3Exception, ValueError) as exc:
        raise EfedError(
            f"no chain reachable at {rpc_url} ({type(exc).__name__}); start one with `efedllm chain up`"
        ) from None
    return w3


@dataclass(frozen=True)
class Signer:
    """Who sends transactions. ``account`` is None when the node signs for ``address`` (an unlocked dev account)."""

    address: str
    account: LocalAccount | None = None


def message_signer(w3: Web3, signer: Signer):
    """text -> EIP-191 personal-message signature by ``signer``: locally with its key, or by the node for an
    unlocked dev account (``eth_sign`` applies the same prefix)."""
    if signer.account is not None:
        return lambda text: bytes(signer.account.sign_message(encode_defunct(text=text)).signature)
    return lambda text: bytes(w3.eth.sign(signer.address, text=text))


def load_signer(
    w3: Web3,
    *,
    keystore: Path | None = None,
    node_account: int | None = None,
    key_env: str = KEY_ENV,
    password_env: str = KEYSTORE_PASSWORD_ENV,
) -> Signer:
    """The signer chosen by the caller's options, in order: keystore, $EFEDLLM_PRIVATE_KEY, a node account
    (``key_env``, ``password_env``: other variables, for a second account such as a verifier's canaries')."""
    if keystore is not None:
        return Signer(*_from_keystore(Path(keystore), password_env=password_env))
    key = os.environ.get(key_env)
    if key:
        try:
            account = Account.from_key(key.strip())
        except (ValueError, TypeError) as exc:
            raise EfedError(f"${key_env} is not a valid private key ({exc.__class__.__name__})") from None
        return Signer(account.address, account)
    accounts = w3.eth.accounts
    index = 0 if node_account is None else node_account
    if not accounts:
        raise EfedError(f"no key: set ${key_env} or pass --keystore FILE (the node has no unlocked accounts)")
    if index >= len(accounts):
        raise EfedError(f"the node has {len(accounts)} unlocked accounts; --node-account {index} is out of range")
    return Signer(Web3.to_checksum_address(accounts[index]))


def _from_keystore(path: Path, *, password_env: str = KEYSTORE_PASSWORD_ENV) -> tuple[str, LocalAccount]:
    try:
        encrypted = json.loads(path.read_text())
    except OSError as exc:
        raise EfedError(f"cannot read keystore {path}: {exc.strerror}") from None
    except json.JSONDecodeError:
        raise EfedError(f"keystore {path} is not JSON") from None
    password = os.environ.get(password_env)
    if password is None:
        password = getpass.getpass(f"Password for {path}: ")
    try:
        account = Account.from_key(Account.decrypt(encrypted, password))
    except (ValueError, TypeError, KeyError):
        raise EfedError(f"cannot decrypt keystore {path}: wrong password or not a keystore") from None
    return account.address, account
