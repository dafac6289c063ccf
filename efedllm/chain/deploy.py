"""Deploy the contracts through web3.py by running the deployment plan (``plan.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from web3 import Web3
from web3.exceptions import Web3Exception

from efedllm.chain.compile import Artifact
from efedllm.chain.deployment import ContractRecord, Deployment
from efedllm.chain.params import ProtocolParams
from efedllm.chain.plan import GRANTS, VERIFIER_ROLE_HOLDER, steps
from efedllm.chain.transactions import Transactor
from efedllm.errors import EfedError

PUSH0_PROBE = "0x5f5ff3"
"""Creation code ``PUSH0 PUSH0 RETURN``: runs on a Shanghai (or later) EVM, an invalid opcode before it."""


def require_shanghai(w3: Web3) -> None:
    """Refuse a node whose EVM predates Shanghai before any transaction: the contracts are compiled for Shanghai
    (compile.py) and use PUSH0, which such a node rejects mid-deployment with an opaque invalid-opcode error."""
    try:
        w3.eth.call({"data": PUSH0_PROBE})
    except (Web3Exception, ValueError) as exc:
        error = (getattr(exc, "rpc_response", None) or {}).get("error")
        reason = error.get("message", exc) if isinstance(error, dict) else exc
        raise EfedError(
            f"this node runs a pre-Shanghai EVM (it rejects PUSH0, which the contracts use: "
            f"{str(reason).splitlines()[0][:100]}); start it with --hardfork shanghai or later"
        ) from None


def deploy(
    w3: Web3,
    tx: Transactor,
    *,
    params: ProtocolParams,
    artifacts: dict[str, Artifact],
    verifiers: Iterable[str] = (),
    progress: Callable[[str], None] = lambda message: None,
) -> Deployment:
    """Deploy every contract, wire the roles, grant VERIFIER_ROLE to ``verifiers``; the signer is governor."""
    require_shanghai(w3)
    governor = tx.signer.address
    addresses: dict[str, str] = {}
    first_block = None
    for step in steps(params, governor):
        artifact = artifacts[step.contract]
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = tx.send(factory.constructor(*step.args(addresses)), label=f"deploy {step.contract}")
        addresses[step.contract] = receipt["contractAddress"]
        first_block = first_block if first_block is not None else receipt["blockNumber"]
        progress(f"deployed {step.contract} at {receipt['contractAddress']} (gas {receipt['gasUsed']:,})")

    def contract(name: str):
        return w3.eth.contract(address=addresses[name], abi=artifacts[name].abi)

    for grant in GRANTS:
        target = contract(grant.contract)
        role = target.functions[grant.role]().call()
        tx.send(target.functions.grantRole(role, addresses[grant.grantee]), label=f"grant {grant.role}")
        progress(f"granted {grant.contract}.{grant.role} to {grant.grantee}")
    holder = contract(VERIFIER_ROLE_HOLDER)
    verifier_role = holder.functions.VERIFIER_ROLE().call()
    for verifier in verifiers:
        tx.send(holder.functions.grantRole(verifier_role, Web3.to_checksum_address(verifier)), label="grant verifier")
        progress(f"granted VERIFIER_ROLE to {verifier}")

    return Deployment(
        chain_id=w3.eth.chain_id,
        governor=governor,
        block=first_block,
        params=params,
        contracts={name: ContractRecord(address=addresses[name], abi=artifacts[name].abi) for name in addresses},
    )
