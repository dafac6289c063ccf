"""Deploy eFedLLM with brownie: ``brownie run scripts/deploy.py [main '<json overrides>'] [--network ID]``.

It runs the same deployment plan as ``efedllm deploy`` (efedllm/chain/plan.py) and writes the same deployment
file (``deployments/<chain id>.json``), so servers, verifiers and clients cannot tell which tool deployed.
On the built-in development network brownie starts Anvil itself (and stops it when the script ends); to keep
the chain, start one first with ``efedllm chain up`` and brownie attaches to it. On a live network the deployer
is the brownie account named by $EFEDLLM_BROWNIE_ACCOUNT (an encrypted keystore: ``brownie accounts new``).
Overrides are ProtocolParams fields, e.g. ``main '{"epoch_length": 3600, "min_verifiers": 3}'``.
"""

import json
import os
from dataclasses import replace

from brownie import accounts, network, project, web3

from efedllm.chain.deploy import check_public
from efedllm.chain.deployment import ContractRecord, Deployment
from efedllm.chain.params import ProtocolParams
from efedllm.chain.plan import GRANTS, steps


def deployer():
    if network.show_active() in ("development", "anvil") and not os.environ.get("EFEDLLM_BROWNIE_ACCOUNT"):
        return accounts[0]
    return accounts.load(os.environ["EFEDLLM_BROWNIE_ACCOUNT"])


def built_abi(containers, name):
    """The compiler's ABI from the build artifact (brownie adds a "name" to the constructor entry in memory)."""
    return json.loads((containers._path / "build" / "contracts" / f"{name}.json").read_text())["abi"]


def main(overrides: str = "{}"):
    params = replace(ProtocolParams(), **json.loads(overrides))
    check_public(params, web3.eth.chain_id)  # before any transaction, as `efedllm deploy` does
    account = deployer()
    containers = project.get_loaded_projects()[0]
    deployed, first_block = {}, None
    for step in steps(params, account.address):
        contract = getattr(containers, step.contract).deploy(*step.args(deployed), {"from": account})
        deployed[step.contract] = contract.address
        first_block = first_block if first_block is not None else contract.tx.block_number
    for grant in GRANTS:
        target = getattr(containers, grant.contract).at(deployed[grant.contract])
        target.grantRole(getattr(target, grant.role)(), deployed[grant.grantee], {"from": account})

    deployment = Deployment(
        chain_id=web3.eth.chain_id,
        governor=account.address,
        block=first_block,
        params=params,
        contracts={
            name: ContractRecord(address=address, abi=built_abi(containers, name)) for name, address in deployed.items()
        },
    )
    path = deployment.save()
    print(f"wrote {path}")
    for name, address in deployed.items():
        print(f"  {name:15} {address}")
    return deployment
