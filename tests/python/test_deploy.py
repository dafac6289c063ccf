"""Deploying through web3.py wires the contracts as the plan says, and the bindings read only the file."""

from dataclasses import fields

import pytest

from efedllm.chain.deployment import Deployment
from efedllm.chain.params import ProtocolParams
from efedllm.chain.plan import CONTRACTS, GRANTS
from efedllm.chain.protocol import Phase, Protocol, Status
from efedllm.chain.transactions import RevertError


def test_every_contract_deployed_with_code(w3, deployment):
    assert list(deployment.contracts) == list(CONTRACTS)
    for record in deployment.contracts.values():
        assert len(w3.eth.get_code(record.address)) > 0


def test_roles_are_wired(protocol_for, deployment):
    p = protocol_for(0)
    for grant in GRANTS:
        contract = p.contract(grant.contract)
        role = contract.functions[grant.role]().call()
        assert contract.functions.hasRole(role, deployment.address(grant.grantee)).call()
    assert p.is_verifier(p.w3.eth.accounts[9])
    assert not p.is_verifier(p.w3.eth.accounts[1])


def test_parameters_on_chain_match_the_deployment(protocol_for, params):
    on_chain = protocol_for(0).parameters()
    expected = {
        "numLayers": params.num_layers,
        "minStake": params.min_stake,
        "unbondingPeriod": params.unbonding_period,
        "slashFraction": params.slash_fraction,
        "theta": params.theta,
        "minVerifiers": params.min_verifiers,
        "immunityEpochs": params.immunity_epochs,
        "slashingRule": params.slashing_rule,
        "minVerifierStake": params.min_verifier_stake,
        "verifierSlashFraction": params.verifier_slash_fraction,
        "kappa": params.kappa,
        "verifierShare": params.verifier_share,
        "claimPeriod": params.claim_period,
        "epochLength": params.epoch_length,
        "commitWorkWindow": params.commit_work_window,
        "commitScoresWindow": params.commit_scores_window,
        "revealWindow": params.reveal_window,
        "finalizeWindow": params.finalize_window,
    }
    assert {k: on_chain[k] for k in expected} == expected
    assert on_chain["genesis"] > 0


def test_deployment_file_round_trip(tmp_path, w3, deployment):
    path = deployment.save(tmp_path)
    assert path.name == f"{w3.eth.chain_id}.json"
    loaded = Deployment.load(path)
    assert loaded == deployment
    assert Deployment.for_chain(w3.eth.chain_id, tmp_path) == deployment


def test_register_through_bindings_updates_views(protocol_for, params):
    server = protocol_for(2)
    server.tx.send(server.registry.functions.register("http://127.0.0.1:9001", 0, 10), value=params.min_stake)
    records = {s.address: s for s in server.servers()}
    record = records[server.signer.address]
    assert (record.endpoint, record.layers, record.status) == ("http://127.0.0.1:9001", range(0, 10), Status.ACTIVE)
    assert server.coverage()[:10] == [1] * 10 and server.coverage()[10:] == [0] * 20
    assert server.missing_layers() == list(range(10, 30))
    assert server.phase(server.current_epoch()) == Phase.WORK


def test_reverts_come_back_with_the_custom_error_name(protocol_for, params):
    server = protocol_for(3)
    with pytest.raises(RevertError) as info:
        server.tx.send(server.registry.functions.register("http://x", 0, 10), value=params.min_stake - 1)
    assert info.value.error == "InsufficientStake"
    assert f"stake={params.min_stake - 1}" in str(info.value)
    with pytest.raises(RevertError) as info:
        server.tx.send(server.registry.functions.register("http://x", 25, 10), value=params.min_stake)
    assert info.value.error == "InvalidSpan"
    with pytest.raises(RevertError) as info:
        server.tx.send(server.registry.functions.setMinStake(1))
    assert info.value.error == "AccessControlUnauthorizedAccount"


def test_bindings_refuse_a_deployment_of_another_chain(w3, deployment):
    other = Deployment(
        **{
            **{f: getattr(deployment, f) for f in ("governor", "block", "params", "contracts")},
            "chain_id": deployment.chain_id + 1,
        }
    )
    with pytest.raises(Exception, match="wrong network"):
        Protocol(w3, other)


def test_params_validation():
    with pytest.raises(ValueError, match="unbonding_period"):
        ProtocolParams(unbonding_period=10)
    with pytest.raises(ValueError, match="non-negative"):
        ProtocolParams(theta=-1)
    assert {f.name for f in fields(ProtocolParams)} >= {"theta", "min_stake", "epoch_length"}
