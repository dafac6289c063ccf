"""The deployment file: one JSON file per chain id with every contract's address and ABI and the parameters
it was deployed with. It is the single source of truth for addresses and ABIs: servers, verifiers, clients,
the dashboard and the brownie scripts all read it. Both deployers (``efedllm deploy`` and
``brownie run scripts/deploy.py``) write it with :func:`Deployment.save`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from efedllm.chain.enums import SCHEMA
from efedllm.chain.params import ProtocolParams
from efedllm.chain.plan import CONTRACTS
from efedllm.errors import EfedError

FORMAT_VERSION = 1
DEFAULT_DIR = Path("deployments")


def deployments_dir() -> Path:
    """Where deployment files live: $EFEDLLM_DEPLOYMENTS or ``./deployments``."""
    return Path(os.environ.get("EFEDLLM_DEPLOYMENTS", DEFAULT_DIR))


@dataclass(frozen=True)
class ContractRecord:
    address: str
    abi: list


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    governor: str
    block: int
    params: ProtocolParams
    contracts: dict[str, ContractRecord]

    def address(self, name: str) -> str:
        return self.contracts[name].address

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "chainId": self.chain_id,
            "governor": self.governor,
            "block": self.block,
            "params": self.params.to_dict(),
            "contracts": {
                name: {"address": record.address, "abi": record.abi} for name, record in self.contracts.items()
            },
            "enums": SCHEMA["enums"],  # for readers without schema.json (the dashboard); optional when reading
        }

    def save(self, directory: Path | None = None) -> Path:
        """Write ``<directory>/<chain id>.json`` (atomically) and return its path."""
        directory = Path(directory or deployments_dir())
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.chain_id}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_json(cls, data: Any, *, source: str = "deployment") -> Deployment:
        """Parse and validate; every defect is reported as one EfedError naming the file and the field.
        Addresses may be in any case (they are stored checksummed); a checksum that does not match is refused."""
        try:
            if data.get("format") != FORMAT_VERSION:
                raise ValueError(f"unsupported format {data.get('format')!r} (expected {FORMAT_VERSION})")
            contracts = {}
            for name in CONTRACTS:
                record = data["contracts"][name]
                address, abi = _address(f"contract {name}", record["address"]), record["abi"]
                _check_abi(name, abi)
                contracts[name] = ContractRecord(address=address, abi=abi)
            return cls(
                chain_id=_integer("chainId", data["chainId"], least=1),
                governor=_address("governor", data["governor"]),
                block=_integer("block", data["block"], least=0),
                params=ProtocolParams(**data["params"]),
                contracts=contracts,
            )
        except KeyError as exc:
            raise EfedError(f"{source}: missing field {exc}") from None
        except (AttributeError, TypeError, ValueError) as exc:
            raise EfedError(f"{source}: malformed deployment file ({exc})") from None

    @classmethod
    def load(cls, path: Path) -> Deployment:
        path = Path(path)
        return cls.from_json(read_json(path), source=str(path))

    @classmethod
    def for_chain(cls, chain_id: int, directory: Path | None = None) -> Deployment:
        """The deployment of ``chain_id`` in the deployments directory."""
        return cls.load(Path(directory or deployments_dir()) / f"{chain_id}.json")


def read_json(path: Path) -> Any:
    """The JSON in a deployment file; EfedError when it is missing, unreadable or not JSON."""
    if not path.is_file():
        raise EfedError(f"no deployment file at {path}; deploy first with `efedllm deploy`")
    try:
        return json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise EfedError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (OSError, ValueError, RecursionError) as exc:  # unreadable, not UTF-8, a huge number, nested too deep
        raise EfedError(f"{path}: not valid JSON ({exc.__class__.__name__})") from None


def _integer(name: str, value: Any, *, least: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}")
    return value


def _address(what: str, value: Any) -> str:
    """``value`` checksummed; in mixed case it must already be (a typo in a checksummed address shows here)."""
    mixed = isinstance(value, str) and value[2:] not in (value[2:].lower(), value[2:].upper())
    if not (isinstance(value, str) and Web3.is_address(value)) or (mixed and not Web3.is_checksum_address(value)):
        raise ValueError(f"{what} has an invalid address {value!r} (0x and 40 hex digits, checksum if mixed case)")
    return Web3.to_checksum_address(value)


def _check_abi(name: str, abi: Any) -> None:
    """The shape web3 and the revert decoder rely on: a list of objects with a "type", named entries with a
    list of typed inputs, and at least one function."""
    if not isinstance(abi, list):
        raise ValueError(f"contract {name} has no ABI list")
    for item in abi:
        if not (isinstance(item, dict) and isinstance(item.get("type"), str)):
            raise ValueError(f"contract {name}: an ABI entry is not an object with a type: {str(item)[:80]}")
        if item["type"] in ("function", "event", "error"):
            inputs = item.get("inputs")
            if not (
                isinstance(item.get("name"), str)
                and isinstance(inputs, list)
                and all(isinstance(i, dict) and isinstance(i.get("type"), str) for i in inputs)
            ):
                raise ValueError(
                    f"contract {name}: ABI {item['type']} entry {str(item.get('name'))[:40]!r} "
                    f"needs a name and a list of typed inputs"
                )
    if not any(item["type"] == "function" for item in abi):
        raise ValueError(f"contract {name} has no functions in its ABI")
