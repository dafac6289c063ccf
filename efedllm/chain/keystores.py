"""Encrypted JSON keystores (Web3 Secret Storage, version 3): creating one and finding the ones in a folder.

They are the files ``--keystore FILE`` reads (``connection.load_signer``): eth_account encrypts (scrypt) and
decrypts them, with the password from $EFEDLLM_KEYSTORE_PASSWORD or a prompt. A new file is written readable by
its owner alone and never over an existing one: overwriting a keystore would lose a key for good.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from web3 import Web3

from efedllm.errors import EfedError

KEYSTORE_DIR_ENV = "EFEDLLM_KEYSTORES"


def keystores_dir() -> Path:
    """Where ``efedllm account`` keeps keystores: $EFEDLLM_KEYSTORES or ``~/.efedllm/keystores``."""
    return Path(os.environ.get(KEYSTORE_DIR_ENV) or Path.home() / ".efedllm" / "keystores")


@dataclass(frozen=True, kw_only=True)
class Keystore:
    address: str
    path: Path


def create_keystore(password: str, *, path: Path | None = None, directory: Path | None = None) -> Keystore:
    """A new random key, encrypted with ``password`` into ``path`` (default: ``<directory>/<address>.json``)."""
    if not password:
        raise EfedError("refusing an empty keystore password")
    account = Account.create()
    if path is None:
        path = Path(directory or keystores_dir()) / f"{account.address}.json"
    path = Path(path)
    if path.exists():
        raise EfedError(f"{path} already exists; refusing to overwrite a keystore")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        encrypted = json.dumps(Account.encrypt(account.key, password))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(encrypted + "\n")
    except FileExistsError:
        raise EfedError(f"{path} already exists; refusing to overwrite a keystore") from None
    except OSError as exc:
        raise EfedError(f"cannot write keystore {path}: {exc.strerror}") from None
    return Keystore(address=account.address, path=path)


def list_keystores(directory: Path) -> tuple[list[Keystore], list[Path]]:
    """The keystores among ``directory``'s ``*.json`` files (by the address they name, which needs no password),
    and the JSON files that are not keystores."""
    directory = Path(directory)
    if not directory.is_dir():
        raise EfedError(f"no keystore folder at {directory}; create a key with `efedllm account new`")
    found, others = [], []
    for path in sorted(directory.glob("*.json")):
        address = _address_of(path)
        if address is None:
            others.append(path)
        else:
            found.append(Keystore(address=address, path=path))
    return found, others


def _address_of(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("crypto") or data.get("Crypto"), dict):
        return None
    address = data.get("address")
    if not isinstance(address, str):
        return None
    address = address if address.startswith("0x") else "0x" + address
    return Web3.to_checksum_address(address) if Web3.is_address(address) else None
