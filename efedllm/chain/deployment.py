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
        """Parse and validate; every defect is reported as one EfedError naming the file and the field."""
        try:
            if data.get("format") != FORMAT_VERSION:
                raise ValueError(f"unsupported format {data.get('format')!r} (expected {FORMAT_VERSION})")
            contracts = {}
            for name in CONTRACTS:
                record = data["contracts"][name]
                address, abi = record["address"], record["abi"]
                if not (isinstance(address, str) and address.startswith("0x") and len(address) == 42):
                    raise ValueError(f"contract {name} has an invalid address {address!r}")
                if not isinstance(abi, list):
                    raise ValueError(f"contract {name} has no ABI list")
                contracts[name] = ContractRecord(address=address, abi=abi)
            return cls(
                chain_id=int(data["chainId"]),
                governor=str(data["governor"]),
                block=int(data["block"]),
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
        if not path.is_file():
            raise EfedError(f"no deployment file at {path}; deploy first with `efedllm deploy`")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise EfedError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_json(data, source=str(path))

    @classmethod
    def for_chain(cls, chain_id: int, directory: Path | None = None) -> Deployment:
        """The deployment of ``chain_id`` in the deployments directory."""
        return cls.load(Path(directory or deployments_dir()) / f"{chain_id}.json")
