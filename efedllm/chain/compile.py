"""Compile the project's contracts with the settings of ``brownie-config.yaml``.

``efedllm deploy`` and ``brownie compile`` must produce the same bytecode, so the compiler version, EVM
version, optimizer and remappings are read from brownie's config instead of being written here again.
The compiler itself is the project's adapter over npm ``solc`` (see ``tools/solc-adapter.js``), installed by
``make setup`` as ``.solcx/solc-v<version>``; py-solc-x runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from efedllm.errors import EfedError

CONTRACTS_DIR = "contracts"
EVM_VERSION = "shanghai"
"""The EVM the contracts are compiled for when brownie-config.yaml names none (it names the same): Shanghai, the
newest both dev nodes run (Ganache 7 stops there), so one bytecode deploys on Anvil, Ganache and public chains."""
CACHE_DIR = Path("build") / "efedllm"


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list
    bytecode: str


def project_root() -> Path:
    """The checkout that holds ``contracts/`` and ``brownie-config.yaml``: $EFEDLLM_PROJECT_ROOT, the current
    directory, or the folder above this package (an editable install)."""
    candidates = [os.environ.get("EFEDLLM_PROJECT_ROOT"), Path.cwd(), Path(__file__).resolve().parents[2]]
    for candidate in candidates:
        if candidate and (Path(candidate) / "brownie-config.yaml").is_file():
            return Path(candidate).resolve()
    raise EfedError(
        "no eFedLLM project found (brownie-config.yaml); run from the repository or set EFEDLLM_PROJECT_ROOT"
    )


def compiler_settings(root: Path) -> dict:
    config = yaml.safe_load((root / "brownie-config.yaml").read_text())["compiler"]
    solc = config["solc"]
    return {
        "version": str(solc["version"]),
        "evmVersion": config.get("evm_version") or EVM_VERSION,
        "optimizer": {"enabled": bool(solc["optimizer"]["enabled"]), "runs": int(solc["optimizer"]["runs"])},
        "remappings": list(solc.get("remappings") or []),
    }


def _standard_input(root: Path, settings: dict, outputs: dict | None = None) -> dict:
    sources = {
        str(path.relative_to(root)): {"content": path.read_text()}
        for path in sorted((root / CONTRACTS_DIR).rglob("*.sol"))
    }
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "evmVersion": settings["evmVersion"],
            "optimizer": settings["optimizer"],
            "remappings": settings["remappings"],
            "outputSelection": outputs or {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }


def compile_contracts(root: Path | None = None) -> dict[str, Artifact]:
    """ABI and creation bytecode of every contract under ``contracts/``, keyed by contract name.

    Results are cached under ``build/efedllm`` by a hash of the sources and settings, so repeated deploys do
    not pay for a compilation.
    """
    root = root or project_root()
    settings = compiler_settings(root)
    standard_input = _standard_input(root, settings)
    digest = hashlib.sha256(json.dumps([standard_input, settings["version"]], sort_keys=True).encode()).hexdigest()
    cache = root / CACHE_DIR / f"{digest[:16]}.json"
    if cache.is_file():
        output = json.loads(cache.read_text())
    else:
        output = _run_solc(root, settings["version"], standard_input)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(output))
    return {
        name: Artifact(name=name, abi=data["abi"], bytecode=data["evm"]["bytecode"]["object"])
        for unit in output["contracts"].values()
        for name, data in unit.items()
    }


def compile_ast(root: Path | None = None) -> dict[str, dict]:
    """The compiler's AST of every source under ``contracts/`` (source path -> AST), for generators that read
    the contracts' declarations (``schema.py``). No code is generated, so this is quick and is not cached."""
    root = root or project_root()
    settings = compiler_settings(root)
    standard_input = _standard_input(root, settings, {"*": {"": ["ast"]}})
    output = _run_solc(root, settings["version"], standard_input)
    return {path: unit["ast"] for path, unit in output["sources"].items()}


def _run_solc(root: Path, version: str, standard_input: dict) -> dict:
    import solcx
    from solcx.exceptions import SolcError

    binary = root / ".solcx" / f"solc-v{version}"
    if not binary.exists():
        raise EfedError(f"compiler {binary} is missing; run `make setup` first")
    cwd = Path.cwd()
    try:
        os.chdir(root)  # the adapter resolves imports and remappings from the working directory
        output = solcx.compile_standard(standard_input, solc_binary=binary, allow_paths=[str(root)])
    except SolcError as exc:
        raise EfedError(f"compilation failed: {exc.message}") from exc
    finally:
        os.chdir(cwd)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise EfedError("compilation failed: " + errors[0].get("formattedMessage", errors[0]["message"]))
    return output
