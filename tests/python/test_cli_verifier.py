"""A verifier's stake commands and penalties, as a user runs them: real ``efedllm`` processes against a real Anvil;
every error is one line. No model is loaded: ``verifier run`` refuses an unstaked verifier before loading it."""

from __future__ import annotations

import pytest
from test_cli import assert_one_line_error, run

from efedllm.chain.anvil import warp_to
from efedllm.chain.connection import Signer
from efedllm.chain.params import ETHER
from efedllm.chain.protocol import Phase, Protocol

VERIFIERS = (8, 9)  # granted VERIFIER_ROLE and staked at deployment (tests/support/chain.py)
UNSTAKED = 7


@pytest.fixture(scope="module")
def env(deployment, tmp_path_factory):
    directory = tmp_path_factory.mktemp("deployments")
    deployment.save(directory)
    return {"EFEDLLM_DEPLOYMENTS": str(directory)}


def cli(anvil, env, *args, account):
    return run(*args, "--rpc-url", anvil.url, "--node-account", str(account), env=env)


def test_stake_unstake_withdraw(anvil, env, w3, deployment):
    status = cli(anvil, env, "verifier", "status", account=UNSTAKED)
    assert status.returncode == 0, status.stderr
    assert "0.000000 ETH bonded" in status.stdout and "may not commit scores" in status.stdout
    assert "no VERIFIER_ROLE" in status.stdout

    staked = cli(anvil, env, "verifier", "stake", "--amount", "1.5", account=UNSTAKED)
    assert staked.returncode == 0, staked.stderr
    assert "now has 1.500000 ETH bonded" in staked.stdout
    assert_one_line_error(
        cli(anvil, env, "verifier", "unstake", "--amount", "2", account=UNSTAKED),
        "asked for 2.000000 ETH but only 1.500000 ETH is bonded",
    )
    unstaked = cli(anvil, env, "verifier", "unstake", "--amount", "0.5", account=UNSTAKED)
    assert unstaked.returncode == 0, unstaked.stderr
    assert "unbonding 0.500000 ETH" in unstaked.stdout and "1.000000 ETH still bonded" in unstaked.stdout
    assert_one_line_error(cli(anvil, env, "verifier", "withdraw", account=UNSTAKED), "still unbonding until")

    me = w3.eth.accounts[UNSTAKED]
    unlock = Protocol(w3, deployment).verifier_stake(me).unlock_time
    warp_to(w3, unlock)
    withdrawn = cli(anvil, env, "verifier", "withdraw", account=UNSTAKED)
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert "withdrew 0.500000 ETH" in withdrawn.stdout
    assert_one_line_error(cli(anvil, env, "verifier", "withdraw", account=UNSTAKED), "nothing is unbonding")


@pytest.mark.parametrize("amount", ["-1", "0", "lots", "1e-19"])
def test_bad_amounts_are_one_line_errors(anvil, env, amount):
    assert_one_line_error(cli(anvil, env, "verifier", "stake", "--amount", amount, account=UNSTAKED), "--amount")


def test_run_refuses_an_unstaked_verifier_before_loading_the_model(anvil, env, w3, deployment):
    gov = Protocol(w3, deployment, Signer(w3.eth.accounts[0]))
    role = gov.scoring.functions.VERIFIER_ROLE().call()
    verifier = w3.eth.accounts[6]
    gov.tx.send(gov.scoring.functions.grantRole(role, verifier))
    assert_one_line_error(
        cli(anvil, env, "verifier", "run", account=6),
        "below minVerifierStake 1.000000 ETH: give --stake ETH",
    )
    assert_one_line_error(
        cli(anvil, env, "verifier", "run", "--stake", "0.5", account=6), "--stake 0.500000 ETH is below"
    )
    refused = cli(anvil, env, "verifier", "run", "--stake", "lots", account=6)
    assert refused.returncode != 0 and "--stake: invalid ETH value: 'lots'" in refused.stderr


def test_run_refuses_a_verifier_as_its_canary_account_before_loading_the_model(anvil, env):
    """Receipts name their client: canaries paid from a verifier's account would tell servers who sends them."""
    assert_one_line_error(
        cli(anvil, env, "verifier", "run", "--canary-node-account", "9", account=9),
        "the canary account 0xa0Ee7A142d267C1f36714E4a8F75612F20a79720 is this verifier's own",
    )
    assert_one_line_error(
        cli(anvil, env, "verifier", "run", "--canary-node-account", "8", account=9), "is a verifier's"
    )


@pytest.mark.parametrize(
    "options", [("--grouped-canaries", "1.5"), ("--grouped-canaries", "-0.1"), ("--canary-group", "1")]
)
def test_bad_canary_options_are_one_line_errors(anvil, env, options):
    assert_one_line_error(
        cli(anvil, env, "verifier", "run", *options, account=9),
        "--grouped-canaries must be between 0 and 1, and --canary-group at least 2",
    )


def test_penalize_a_commit_without_reveal(anvil, env, w3, deployment):
    silent = Protocol(w3, deployment, Signer(w3.eth.accounts[9]))
    epoch = silent.current_epoch()
    warp_to(w3, silent.window_start(epoch, Phase.COMMIT_SCORES))
    silent.tx.send(silent.scoring.functions.commitScores(epoch, b"\x11" * 32))
    args = ("verifier", "penalize", "--epoch", str(epoch), "--verifier", silent.signer.address)
    assert_one_line_error(cli(anvil, env, *args, account=8), "this needs finalize")

    warp_to(w3, silent.window_start(epoch, Phase.FINALIZE))
    done = cli(anvil, env, *args, account=8)
    assert done.returncode == 0, done.stderr
    assert "never revealed them: slashed 0.100000 ETH" in done.stdout
    assert silent.verifier_stake(silent.signer.address).bonded == ETHER - ETHER // 10
    assert_one_line_error(cli(anvil, env, *args, account=8), "owes no penalty for epoch")
    assert_one_line_error(
        cli(anvil, env, "verifier", "penalize", "--epoch", "x", account=8), "--epoch: 'x' is not an epoch number"
    )
    assert_one_line_error(
        cli(anvil, env, "verifier", "penalize", "--epoch", "1", "--verifier", "0x12", account=8), "--verifier"
    )
