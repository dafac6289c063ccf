"""Deploy the contracts through web3.py by running the deployment plan (``plan.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from web3 import Web3
from web3.exceptions import Web3Exception

from efedllm.chain.compile import Artifact
from efedllm.chain.deployment import ContractRecord, Deployment
from efedllm.chain.enums import RewardRule
from efedllm.chain.node import ANVIL_CHAIN_ID, GANACHE_CHAIN_ID
from efedllm.chain.params import ProtocolParams
from efedllm.chain.plan import GRANTS, VERIFIER_ROLE_HOLDER, steps
from efedllm.chain.transactions import Transactor
from efedllm.errors import EfedError, InvalidParameter

UINT128_MAX = 2**128 - 1
BOUNDS = {  # the contracts' constructor bounds (each contract's constructor), checked before sending
    "num_layers": (1, 1024),
    "min_stake": (1, UINT128_MAX),
    "unbonding_period": (0, 365 * 24 * 3600),
    "slash_fraction": (0, 10**18),
    "theta": (0, 10**18),
    "min_verifiers": (1, 32),
    "immunity_epochs": (0, 1000),
    "slashing_rule": (0, 1),
    "reward_rule": (0, 1),
    "min_verifier_stake": (1, UINT128_MAX),
    "verifier_slash_fraction": (0, 10**18),
    "kappa": (0, 10**18),
    "claim_period": (1, 10 * 365 * 24 * 3600),
    "verifier_share": (0, 10**18 // 2),
    "challenge_bond": (0, UINT128_MAX),
    "response_window": (1, 30 * 24 * 3600),
    "withdrawal_delay": (0, 365 * 24 * 3600),
    "epoch_length": (1, None),
    "commit_work_window": (1, None),
    "commit_scores_window": (1, None),
    "reveal_window": (1, None),
    "finalize_window": (1, None),
}

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
    """Deploy every contract, wire the roles, grant VERIFIER_ROLE to ``verifiers``; the signer is governor.
    Every argument is checked first (``check_deployable``): nothing is sent unless the whole plan can succeed."""
    verifiers = check_deployable(
        params, verifiers, now=w3.eth.get_block("latest")["timestamp"], chain_id=w3.eth.chain_id
    )
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
        tx.send(holder.functions.grantRole(verifier_role, verifier), label="grant verifier")
        progress(f"granted VERIFIER_ROLE to {verifier}")

    return Deployment(
        chain_id=w3.eth.chain_id,
        governor=governor,
        block=first_block,
        params=params,
        contracts={name: ContractRecord(address=addresses[name], abi=artifacts[name].abi) for name in addresses},
    )


def check_deployable(
    params: ProtocolParams, verifiers: Iterable[str], *, now: int | None = None, chain_id: int | None = None
) -> list[str]:
    """Refuse, before the first transaction, what would make a deployment fail halfway (about 7M gas spent and no
    deployment file): parameters outside the constructors' bounds, a genesis in the past (``now``: chain time),
    a verifier that is not an address; and, on a public chain (``chain_id`` not a dev chain's), parameters that
    let one party decide verdicts (``check_public``). Returns the verifiers, checksummed."""
    for name, (low, high) in BOUNDS.items():
        value = getattr(params, name)
        if value < low or (high is not None and value > high):
            limits = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise InvalidParameter(f"parameter {name} must be {limits}, got {value}")
    if now is not None and params.genesis and params.genesis < now:
        raise InvalidParameter(
            f"parameter genesis ({params.genesis}) is before the chain's time ({now}); "
            f"give 0 for the deployment block or a time ahead"
        )
    if chain_id is not None:
        check_public(params, chain_id)
    return [verifier_address(text) for text in verifiers]


DEV_CHAIN_IDS = (ANVIL_CHAIN_ID, GANACHE_CHAIN_ID)
PUBLIC_MIN_VERIFIERS = 3


def check_public(params: ProtocolParams, chain_id: int) -> None:
    """On any chain but a local dev chain: at least three verifiers must reveal for a verdict (with one or two, a
    single liar decides the median: with two the median is their mean, so one liar moves it half-way), and no
    immunity (a slashed operator re-registers under a new address and would get fresh immunity for free), and the
    stake-weighted reward rule (under the work-weighted one, work a server sends itself raises its share)."""
    if chain_id in DEV_CHAIN_IDS:
        return
    if params.min_verifiers < PUBLIC_MIN_VERIFIERS:
        raise InvalidParameter(
            f"parameter min_verifiers must be at least {PUBLIC_MIN_VERIFIERS} on a public chain (chain id "
            f"{chain_id}), got {params.min_verifiers}: with fewer, one lying verifier decides a verdict"
        )
    if params.immunity_epochs:
        raise InvalidParameter(
            f"parameter immunity_epochs must be 0 on a public chain (chain id {chain_id}), got "
            f"{params.immunity_epochs}: a slashed operator would re-register under a new address and be immune again"
        )
    if params.reward_rule != RewardRule.STAKE:
        raise InvalidParameter(
            f"parameter reward_rule must be stake on a public chain (chain id {chain_id}): under the work rule a "
            f"server that sends itself paid work earns a larger share of the pool than the work cost it"
        )


def verifier_address(text: str) -> str:
    """``text`` as a checksummed address: 0x and 40 hex digits; a mixed-case one must carry a valid checksum."""
    body = text[2:] if isinstance(text, str) and text[:2] in ("0x", "0X") else None
    if body is None or len(body) != 40 or any(c not in "0123456789abcdefABCDEF" for c in body):
        raise InvalidParameter(f"--verifier {text!r} is not an address (0x and 40 hex digits)")
    if body != body.lower() and body != body.upper() and not Web3.is_checksum_address(text):
        raise InvalidParameter(f"--verifier {text} has a wrong checksum (mixed case): check the address for a typo")
    return Web3.to_checksum_address(text)
