"""Deployment through efedllm.chain.plan: wiring, role grants, parameters, and constructor checks."""

from dataclasses import replace

import pytest
from brownie import EpochSchedule, ServerRegistry, TrustScoring
from conftest import ONE, TEST_PARAMS, bytes32, deploy_system, reverts, role

from efedllm.chain import plan

GOVERNED = ("RewardPool", "ServerRegistry", "VerifierStakes", "WorkLedger", "TrustScoring")


def test_contracts_are_wired_to_each_other(system):
    s = system
    for name in GOVERNED:
        assert s.by_name[name].schedule() == s.schedule
    assert s.registry.rewardPool() == s.pool
    assert s.ledger.registry() == s.registry
    assert s.scoring.registry() == s.registry
    assert s.scoring.ledger() == s.ledger
    assert s.scoring.rewardPool() == s.pool
    assert s.scoring.verifierStakes() == s.stakes
    assert s.stakes.registry() == s.registry
    assert s.stakes.rewardPool() == s.pool


# (System field, getter) -> the ProtocolParams field the deployed value must equal
PARAMETERS = {
    ("schedule", "EPOCH_LENGTH"): "epoch_length",
    ("schedule", "COMMIT_WORK_WINDOW"): "commit_work_window",
    ("schedule", "COMMIT_SCORES_WINDOW"): "commit_scores_window",
    ("schedule", "REVEAL_WINDOW"): "reveal_window",
    ("schedule", "FINALIZE_WINDOW"): "finalize_window",
    ("schedule", "settlementDelay"): "settlement_delay",
    ("registry", "NUM_LAYERS"): "num_layers",
    ("registry", "minStake"): "min_stake",
    ("registry", "unbondingPeriod"): "unbonding_period",
    ("registry", "slashFraction"): "slash_fraction",
    ("scoring", "theta"): "theta",
    ("scoring", "minVerifiers"): "min_verifiers",
    ("scoring", "immunityEpochs"): "immunity_epochs",
    ("scoring", "minVerifierStake"): "min_verifier_stake",
    ("scoring", "verifierSlashFraction"): "verifier_slash_fraction",
    ("scoring", "kappa"): "kappa",
    ("stakes", "unbondingPeriod"): "unbonding_period",
}


def test_parameters_come_from_protocol_params(system, params):
    deployed = {(c, g): getattr(getattr(system, c), g)() for c, g in PARAMETERS}
    assert deployed == {key: getattr(params, field) for key, field in PARAMETERS.items()}
    assert system.ledger.MAX_WORK_UNITS() == 2**40


@pytest.mark.parametrize("grant", plan.GRANTS, ids=lambda g: f"{g.contract}.{g.role}")
def test_plan_grants_roles_to_contracts(system, grant):
    contract = system.by_name[grant.contract]
    assert contract.hasRole(role(grant.role), system.by_name[grant.grantee])


def test_governor_administers_every_contract_and_nobody_else_holds_contract_roles(system, gov, stranger):
    for name in GOVERNED:
        contract = system.by_name[name]
        assert contract.hasRole(role("DEFAULT_ADMIN_ROLE"), gov)
        assert contract.hasRole(role("GOVERNOR_ROLE"), gov)
        assert not contract.hasRole(role("GOVERNOR_ROLE"), stranger)
    assert not system.pool.hasRole(role("DEPOSITOR_ROLE"), gov)
    assert not system.pool.hasRole(role("SCORER_ROLE"), gov)
    assert not system.registry.hasRole(role("SLASHER_ROLE"), gov)
    assert not system.stakes.hasRole(role("SLASHER_ROLE"), gov)


def test_fixture_verifiers_hold_the_verifier_role(system, verifiers, stranger):
    for v in verifiers:
        assert system.scoring.hasRole(role("VERIFIER_ROLE"), v)
    assert not system.scoring.hasRole(role("VERIFIER_ROLE"), stranger)


def test_genesis_zero_means_the_deployment_block(system, web3):
    tx_block = web3.eth.get_transaction_receipt(system.schedule.tx.txid)["blockNumber"]
    assert system.schedule.GENESIS() == web3.eth.get_block(tx_block)["timestamp"]
    assert system.schedule.currentEpoch() == 0


def test_future_genesis_starts_in_phase_future(gov, clock):
    genesis = clock.now() + 1000
    schedule = EpochSchedule.deploy(genesis, 100, 20, 20, 20, 20, {"from": gov})
    assert schedule.GENESIS() == genesis
    assert schedule.currentEpoch() == 0
    assert schedule.phase(0) == 0  # Future
    clock.goto(genesis)
    assert schedule.phase(0) == 1  # Work


def test_genesis_at_the_deployment_block_is_accepted(gov, clock):
    t = clock.now() + 5
    clock.set_next(t)
    schedule = EpochSchedule.deploy(t, 100, 20, 20, 20, 20, {"from": gov})
    assert schedule.GENESIS() == t == clock.now()


def test_genesis_in_the_past_is_rejected(gov, clock):
    clock.sleep(10)
    with reverts("InvalidSchedule"):
        EpochSchedule.deploy(clock.now() - 1, 100, 20, 20, 20, 20, {"from": gov})


@pytest.mark.parametrize("zero_at", range(1, 6))
def test_schedule_rejects_zero_lengths(gov, zero_at):
    args = [0, 100, 20, 20, 20, 20]
    args[zero_at] = 0
    with reverts("InvalidSchedule"):
        EpochSchedule.deploy(*args, {"from": gov})


@pytest.mark.parametrize("num_layers", [0, 1025])
def test_registry_rejects_model_layer_counts_out_of_range(system, gov, num_layers):
    with reverts("InvalidSpan", 0, 0, num_layers):
        ServerRegistry.deploy(gov, system.schedule, system.pool, num_layers, ONE, 400, ONE // 2, {"from": gov})


def test_registry_accepts_the_largest_model(system, gov):
    registry = ServerRegistry.deploy(gov, system.schedule, system.pool, 1024, ONE, 400, ONE // 2, {"from": gov})
    assert registry.NUM_LAYERS() == 1024
    assert len(registry.coverage()) == 1024


@pytest.mark.parametrize(
    "field, value, name, low, high",
    [
        ("min_stake", 0, "minStake", 1, 2**128 - 1),
        ("unbonding_period", 180, "unbondingPeriod", 181, 365 * 86400),
        ("slash_fraction", ONE + 1, "slashFraction", 0, ONE),
    ],
)
def test_registry_constructor_checks_parameter_bounds(system, gov, field, value, name, low, high):
    args = dict(min_stake=ONE, unbonding_period=400, slash_fraction=ONE // 2)
    args[field] = value
    with reverts("ParameterOutOfBounds", bytes32(name), value, low, high):
        ServerRegistry.deploy(
            gov,
            system.schedule,
            system.pool,
            30,
            args["min_stake"],
            args["unbonding_period"],
            args["slash_fraction"],
            {"from": gov},
        )


@pytest.mark.parametrize(
    "index, value, name, low, high",
    [
        (0, ONE + 1, "theta", 0, ONE),
        (1, 0, "minVerifiers", 1, 32),
        (1, 33, "minVerifiers", 1, 32),
        (2, 1001, "immunityEpochs", 0, 1000),
        (5, 0, "minVerifierStake", 1, 2**128 - 1),
        (6, ONE + 1, "verifierSlashFraction", 0, ONE),
        (7, ONE + 1, "kappa", 0, ONE),
    ],
)
def test_scoring_constructor_checks_parameter_bounds(system, gov, index, value, name, low, high):
    args = [ONE // 2, 2, 0, 0, 0, ONE, ONE // 10, ONE // 2]  # ..., slashing rule, reward rule, verifier rules
    args[index] = value
    with reverts("ParameterOutOfBounds", bytes32(name), value, low, high):
        TrustScoring.deploy(
            gov,
            system.schedule,
            system.registry,
            system.ledger,
            system.pool,
            system.stakes,
            *args[:3],
            tuple(args[3:5]),
            tuple(args[5:]),
            {"from": gov},
        )


def test_a_second_deployment_with_other_params_is_independent(deploy, system):
    other = deploy(replace(TEST_PARAMS, immunity_epochs=3, min_verifiers=1))
    assert other.scoring.immunityEpochs() == 3
    assert other.scoring.minVerifiers() == 1
    assert system.scoring.immunityEpochs() == 0
    assert other.registry.rewardPool() == other.pool != system.pool


def test_deploy_system_grants_no_verifier_roles_unless_asked(gov, verifiers):
    bare = deploy_system(TEST_PARAMS, gov)
    assert not bare.scoring.hasRole(role("VERIFIER_ROLE"), verifiers[0])
    assert bare.pool.hasRole(role("SCORER_ROLE"), bare.scoring)


def test_limits(system):
    assert system.registry.MAX_MODEL_LAYERS() == 1024
    assert system.registry.MAX_ENDPOINT_LENGTH() == 256
    assert system.registry.MAX_WEIGHT() == 100 * ONE
    assert system.registry.MAX_UNBONDING_PERIOD() == 365 * 24 * 3600
    assert system.scoring.MAX_VERIFIERS() == 32
    assert system.scoring.MAX_IMMUNITY_EPOCHS() == 1000


def test_roles_are_administered_by_the_default_admin(system):
    for name in GOVERNED:
        contract = system.by_name[name]
        assert contract.supportsInterface("0x7965db0b")  # IAccessControl
        assert not contract.supportsInterface("0xffffffff")
    for contract, role_name in [
        (system.scoring, "VERIFIER_ROLE"),
        (system.pool, "SCORER_ROLE"),
        (system.pool, "DEPOSITOR_ROLE"),
        (system.registry, "SLASHER_ROLE"),
        (system.stakes, "SLASHER_ROLE"),
    ]:
        assert contract.getRoleAdmin(role(role_name)) == role("DEFAULT_ADMIN_ROLE")
