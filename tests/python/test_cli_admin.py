"""The roles that had no command: funding epochs (anyone), governance (`efedllm admin`), and making a key
(`efedllm account`), run as a user runs them: real ``efedllm`` processes against a real Anvil and deployment.

A refusal is one line naming the contract's error and its meaning, and a refused command sends nothing (the
balance or nonce of its signer is unchanged).
"""

from __future__ import annotations

import json
import re
import signal
import stat

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from test_cli import EFEDLLM, assert_one_line_error, run
from web3 import Web3

from efedllm.chain.anvil import free_port, warp_to
from efedllm.chain.connection import Signer, load_signer, message_signer
from efedllm.chain.governance import PARAMETERS, WEIGHT_SETTER
from efedllm.chain.params import ETHER, ONE
from efedllm.chain.protocol import Phase, Protocol
from tests.support.processes import watched

GOVERNOR, STRANGER, FUNDER, CANDIDATE, SERVER = 0, 4, 5, 6, 3


@pytest.fixture(scope="module")
def env(deployment, tmp_path_factory):
    directory = tmp_path_factory.mktemp("deployments")
    deployment.save(directory)
    return {"EFEDLLM_DEPLOYMENTS": str(directory)}


@pytest.fixture(scope="module")
def chain(w3, deployment) -> Protocol:
    """Read-only bindings for the checks."""
    return Protocol(w3, deployment)


def cli(anvil, env, *args, account=GOVERNOR, extra_env=None):
    signing = [] if account is None else ["--node-account", str(account)]
    return run(*args, "--rpc-url", anvil.url, *signing, env={**env, **(extra_env or {})})


def ok(result):
    assert result.returncode == 0, result.stderr
    return result.stdout


def funded_epoch(out: str) -> int:
    return int(re.search(r"funded epoch (\d+) with", out).group(1))


# ---------------------------------------------------------------- fund


def test_fund_the_current_and_the_next_epoch(anvil, w3, env, chain):
    out = ok(cli(anvil, env, "fund", "--amount", "1.5", account=FUNDER))
    epoch = funded_epoch(out)
    assert epoch == epoch_at(chain, out)  # the current epoch of the block the funding was mined in
    assert chain.pool.functions.poolSize(epoch).call() == 3 * ETHER // 2
    assert f"the pool of epoch {epoch} now holds 1.500000 ETH" in out

    out = ok(cli(anvil, env, "fund", "--next", "--amount", "0.5", account=FUNDER))
    assert funded_epoch(out) == epoch_at(chain, out) + 1
    assert chain.pool.functions.poolSize(funded_epoch(out)).call() == ETHER // 2


def epoch_at(chain, out: str) -> int:
    block = int(re.search(r", block (\d+)\)", out).group(1))
    return chain.schedule.functions.currentEpoch().call(block_identifier=block)


def test_funding_a_closed_epoch_is_refused_and_sends_nothing(anvil, w3, env, chain):
    warp_to(w3, chain.window_start(chain.current_epoch() + 1, Phase.WORK))  # epoch 0 and the funded ones are over
    current = chain.current_epoch()
    funder = w3.eth.accounts[FUNDER]
    before = (w3.eth.get_balance(funder), w3.eth.get_transaction_count(funder))
    closed = cli(anvil, env, "fund", "--epoch", "0", "--amount", "1", account=FUNDER)
    assert_one_line_error(
        closed, f"epoch 0 can no longer be funded: its funding window is over; the current epoch is {current}"
    )
    assert_one_line_error(cli(anvil, env, "fund", "--amount", "0", account=FUNDER), "--amount must be a positive")
    assert_one_line_error(
        cli(anvil, env, "fund", "--epoch", "x", "--amount", "1", account=FUNDER), "--epoch: 'x' is not an epoch number"
    )
    assert (w3.eth.get_balance(funder), w3.eth.get_transaction_count(funder)) == before


# ---------------------------------------------------------------- verifiers and who may govern


def test_grant_and_revoke_the_verifier_role(anvil, w3, env, chain):
    candidate = w3.eth.accounts[CANDIDATE]
    assert not chain.is_verifier(candidate)
    assert "granted VERIFIER_ROLE to" in ok(cli(anvil, env, "admin", "grant-verifier", candidate))
    assert chain.is_verifier(candidate)
    assert "already holds VERIFIER_ROLE; nothing sent" in ok(
        cli(anvil, env, "admin", "grant-verifier", candidate.lower())
    )
    assert "revoked VERIFIER_ROLE from" in ok(cli(anvil, env, "admin", "revoke-verifier", candidate))
    assert not chain.is_verifier(candidate)

    typo = candidate[:-1] + (candidate[-1].lower() if candidate[-1].isupper() else candidate[-1].upper())
    if typo[-1].isdigit():  # the last character has no case: break the checksum elsewhere
        i = next(i for i, c in enumerate(candidate) if i > 1 and c.isalpha())
        typo = candidate[:i] + candidate[i].swapcase() + candidate[i + 1 :]
    nonce = w3.eth.get_transaction_count(w3.eth.accounts[GOVERNOR])
    assert_one_line_error(cli(anvil, env, "admin", "grant-verifier", typo), "is not an address")
    assert_one_line_error(cli(anvil, env, "admin", "grant-verifier", "0x1234"), "is not an address")
    assert_one_line_error(cli(anvil, env, "admin", "grant-verifier", "0x" + "0" * 40), "the zero address")
    assert w3.eth.get_transaction_count(w3.eth.accounts[GOVERNOR]) == nonce


def test_someone_without_the_role_is_refused_by_name(anvil, w3, env, chain):
    stranger = w3.eth.accounts[STRANGER]
    result = cli(anvil, env, "admin", "set", "theta", "0.7", account=STRANGER)
    assert_one_line_error(result, f"setTheta reverted: AccessControlUnauthorizedAccount(account={stranger}, ")
    assert f"{stranger} lacks GOVERNOR_ROLE" in result.stderr
    granted = cli(anvil, env, "admin", "grant-verifier", w3.eth.accounts[CANDIDATE], account=STRANGER)
    assert_one_line_error(granted, "grantRole reverted: AccessControlUnauthorizedAccount(")
    assert "lacks DEFAULT_ADMIN_ROLE" in granted.stderr
    assert_one_line_error(cli(anvil, env, "admin", "pause", account=STRANGER), "lacks GOVERNOR_ROLE")
    assert chain.scoring.functions.theta().call() == ONE // 2
    assert not chain.is_verifier(w3.eth.accounts[CANDIDATE])
    assert w3.eth.get_transaction_count(stranger) == 0


# ---------------------------------------------------------------- parameters and weights


def test_the_parameter_table_covers_every_setter(deployment):
    setters = {
        (name, item["name"])
        for name, record in deployment.contracts.items()
        for item in record.abi
        if item["type"] == "function" and item["stateMutability"] != "view" and re.match(r"set[A-Z]", item["name"])
    }
    assert setters == {(p.contract, p.setter) for p in PARAMETERS} | {WEIGHT_SETTER}
    for p in PARAMETERS:  # every getter exists and the names match the ones `efedllm status` shows
        assert any(item.get("name") == p.onchain for item in deployment.contracts[p.contract].abi)


def test_set_parameters_within_and_outside_their_bounds(anvil, w3, env, chain):
    out = ok(cli(anvil, env, "admin", "set", "theta", "0.6"))
    assert chain.scoring.functions.theta().call() == 6 * ONE // 10
    assert "theta: 0.5 -> 0.6 (TrustScoring.setTheta)" in out
    ok(cli(anvil, env, "admin", "set", "minStake", "2"))  # the on-chain name works too; ETH
    assert chain.registry.functions.minStake().call() == 2 * ETHER
    ok(cli(anvil, env, "admin", "set", "immunity_epochs", "3"))
    assert chain.scoring.functions.immunityEpochs().call() == 3

    governor = w3.eth.accounts[GOVERNOR]
    nonce = w3.eth.get_transaction_count(governor)
    too_big = cli(anvil, env, "admin", "set", "theta", "2")
    assert_one_line_error(too_big, "setTheta reverted: ParameterOutOfBounds(")
    assert "theta = 2000000000000000000 is outside [0, 1000000000000000000]" in too_big.stderr
    short = cli(anvil, env, "admin", "set", "unbonding-period", "10")
    assert_one_line_error(short, "setUnbondingPeriod reverted: ParameterOutOfBounds(")
    assert "unbondingPeriod = 10 is outside [161, " in short.stderr  # an epoch and its windows, plus one second
    assert_one_line_error(cli(anvil, env, "admin", "set", "thetaa", "1"), "unknown parameter 'thetaa'; known: ")
    assert_one_line_error(cli(anvil, env, "admin", "set", "min-verifiers", "1.5"), "must be a whole number")
    assert_one_line_error(cli(anvil, env, "admin", "set", "slash-fraction", "-0.1"), "must be a non-negative")
    assert w3.eth.get_transaction_count(governor) == nonce
    assert chain.scoring.functions.theta().call() == 6 * ONE // 10


def test_set_a_servers_weight(anvil, w3, env, chain, deployment):
    server = Protocol(w3, deployment, Signer(w3.eth.accounts[SERVER]))
    server.tx.send(
        server.registry.functions.register("http://127.0.0.1:9", 0, 10),
        value=server.registry.functions.minStake().call(),
        label="register",
    )
    address = server.signer.address
    out = ok(cli(anvil, env, "admin", "set-weight", address, "1.5"))
    assert f"weight of {address}: 1 -> 1.5" in out
    assert chain.registry.functions.getServer(address).call()[-1] == 3 * ONE // 2
    too_big = cli(anvil, env, "admin", "set-weight", address, "101")
    assert_one_line_error(too_big, "setWeight reverted: ParameterOutOfBounds(")
    assert "weight = 101000000000000000000 is outside [1, 100000000000000000000]" in too_big.stderr
    nobody = w3.eth.accounts[STRANGER]
    assert_one_line_error(
        cli(anvil, env, "admin", "set-weight", nobody, "2"),
        f"setWeight reverted: NotRegistered(server={nobody}): {nobody} is not registered",
    )
    assert_one_line_error(cli(anvil, env, "admin", "set-weight", address, "0"), "W must be more than 0")


# ---------------------------------------------------------------- pause


def test_pause_and_unpause(anvil, w3, env, chain):
    names = ["RewardPool", "ServerRegistry", "WorkLedger", "TrustScoring"]
    paused = lambda: {n: chain.contract(n).functions.paused().call() for n in names}  # noqa: E731
    assert "paused: RewardPool" in ok(cli(anvil, env, "admin", "pause", "--contract", "rewardpool"))
    assert paused() == {"RewardPool": True, "ServerRegistry": False, "WorkLedger": False, "TrustScoring": False}
    refused = cli(anvil, env, "fund", "--amount", "1", account=FUNDER)
    assert_one_line_error(refused, "fundEpoch reverted: EnforcedPause(): governance has paused the contract")

    out = ok(cli(anvil, env, "admin", "pause"))
    assert (
        "RewardPool is already paused" in out
        and "paused: ServerRegistry, VerifierStakes, WorkLedger, TrustScoring" in out
    )
    assert all(paused().values())
    assert_one_line_error(
        cli(anvil, env, "admin", "pause", "--contract", "EpochSchedule"),
        "--contract 'EpochSchedule' is not a pausable contract; pausable: RewardPool",
    )
    assert "unpaused: RewardPool, ServerRegistry, VerifierStakes, WorkLedger, TrustScoring" in ok(
        cli(anvil, env, "admin", "unpause")
    )
    assert not any(paused().values())


# ---------------------------------------------------------------- roll-over


def test_roll_over_unearned_settled_pools(anvil, w3, env, chain, deployment):
    funder = Protocol(w3, deployment, Signer(w3.eth.accounts[FUNDER]))
    epoch = chain.current_epoch() + 1  # the next epoch: still open however long the test takes
    funder.tx.send(funder.pool.functions.fundEpoch(epoch), value=ETHER, label="fundEpoch")
    not_yet = cli(anvil, env, "admin", "roll-over", str(epoch), account=FUNDER)
    assert_one_line_error(not_yet, f"epoch {epoch} cannot be rolled over: it is in its ")
    assert "phase, not settled yet" in not_yet.stderr

    warp_to(w3, chain.window_start(epoch, Phase.SETTLED))
    waiting = {
        e: chain.pool.functions.poolSize(e).call() for e in range(epoch + 1) if chain.pool.functions.poolSize(e).call()
    }
    assert epoch in waiting and len(waiting) >= 2  # this pool and those the first test funded, all unearned
    out = ok(cli(anvil, env, "admin", "roll-over", "--all-settled", account=FUNDER))  # anyone may roll over
    target = int(re.search(r"into epoch (\d+)", out).group(1))
    assert target > epoch
    for e in waiting:
        assert chain.pool_of(e).rolled_out is True
        assert f"from epoch {e} into epoch {target}" in out
    assert chain.pool_of(target).rolled_in >= sum(waiting.values())

    again = cli(anvil, env, "admin", "roll-over", str(epoch), account=FUNDER)
    assert_one_line_error(again, f"epoch {epoch} cannot be rolled over: its pool was already rolled over")
    assert "no settled pool waits to be rolled over" in ok(
        cli(anvil, env, "admin", "roll-over", "--all-settled", account=FUNDER)
    )


# ---------------------------------------------------------------- roles


def test_roles_lists_every_holder(anvil, w3, env, deployment):
    out = ok(cli(anvil, env, "admin", "roles", account=None))
    lines = out.splitlines()
    governor = deployment.governor
    for name in ("RewardPool", "ServerRegistry", "WorkLedger", "TrustScoring"):
        for role in ("DEFAULT_ADMIN_ROLE", "GOVERNOR_ROLE"):
            assert any(line.split()[:3] == [name, role, governor] for line in lines), (name, role)
    assert any(line.split()[:3] == ["TrustScoring", "VERIFIER_ROLE", w3.eth.accounts[9]] for line in lines)
    assert any(
        line.split()[:4] == ["RewardPool", "DEPOSITOR_ROLE", deployment.address("ServerRegistry"), "ServerRegistry"]
        for line in lines
    )
    assert w3.eth.accounts[CANDIDATE] not in out  # granted, then revoked


# ---------------------------------------------------------------- keys


def test_account_new_list_and_sign_with_it(anvil, w3, env, chain, tmp_path, monkeypatch):
    folder = tmp_path / "keys"
    password = {"EFEDLLM_KEYSTORE_PASSWORD": "correct horse"}
    path = folder / "provider.json"
    out = ok(run("account", "new", "--keystore", str(path), env=password))
    address = re.search(r"created (0x[0-9a-fA-F]{40}) in", out).group(1)
    assert Web3.is_checksum_address(address)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["address"].lower() == address[2:].lower()
    second = ok(run("account", "new", env={**password, "EFEDLLM_KEYSTORES": str(folder)}))
    other = re.search(r"created (0x[0-9a-fA-F]{40}) in", second).group(1)
    assert (folder / f"{other}.json").is_file()
    (folder / "notes.json").write_text("{}")

    listed = ok(run("account", "list", "--dir", str(folder)))
    assert f"{address}  {path}" in listed and f"{other}  {folder / f'{other}.json'}" in listed
    assert "1 other JSON file(s)" in listed
    assert_one_line_error(run("account", "new", "--keystore", str(path), env=password), "already exists")
    assert_one_line_error(run("account", "list", "--dir", str(tmp_path / "none")), "no keystore folder")

    monkeypatch.setenv("EFEDLLM_KEYSTORE_PASSWORD", password["EFEDLLM_KEYSTORE_PASSWORD"])
    signer = load_signer(w3, keystore=path)
    assert signer.address == address
    signature = message_signer(w3, signer)("hello")
    assert Account.recover_message(encode_defunct(text="hello"), signature=signature) == address
    w3.eth.send_transaction({"from": w3.eth.accounts[GOVERNOR], "to": address, "value": ETHER})
    funded = run("fund", "--amount", "0.25", "--rpc-url", anvil.url, "--keystore", str(path), env={**env, **password})
    assert f"with 0.250000 ETH from {address}" in ok(funded)  # the new key signed a real transaction


def test_chain_up_lists_the_dev_accounts(tmp_path):
    port = free_port()
    with watched([EFEDLLM, "chain", "up", "--port", str(port), "--accounts", "3"], timeout=120) as proc:
        shown = []
        for line in proc.stdout:
            shown.append(line)
            if line.startswith("deploy with"):
                break
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    text = "".join(shown)
    assert "3 unlocked dev accounts" in text
    assert "(0) 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266  10,000.000000 ETH" in text
    assert "their private keys are public" in text
