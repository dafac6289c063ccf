"""The sampling seed comes from the verifiers' salts, and verifying is paid.

Verifier daemons (verifier/daemon.py, in this process and without a model: no server has work to open) commit a
seed share while an epoch works, reveal it once commitments are closed, and draw the seed from the revealed shares
(TrustScoring.drawSeed). A verifier restarted between its commitment and the reveal still reveals (the salt is in
its state file). A verifier that committed a share and stopped holds the seed back until a quarter into the
CommitScores window, and then ``efedllm verifier penalize`` slashes it for the withheld share.

Then one epoch scored by hand with the default verifier share (5%): ``efedllm verifier status`` shows the pay
waiting, ``efedllm verifier claim`` pulls it, and the server and the two verifiers are paid the whole pool but
the dust.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from eth_abi import encode
from test_cli import assert_one_line_error, run
from web3 import Web3

from efedllm.chain.anvil import warp_to
from efedllm.chain.connection import Signer
from efedllm.chain.params import ETHER, ONE, ProtocolParams
from efedllm.chain.protocol import Phase, Protocol
from efedllm.verifier.config import VerifyConfig
from efedllm.verifier.daemon import Verifier

VERIFIERS = (7, 8, 9)  # granted VERIFIER_ROLE and staked at deployment (tests/support/chain.py)
SERVER = 1
PARAMS = ProtocolParams()  # verifiers share 5% of a pool
ZERO = bytes(32)


@pytest.fixture(scope="module")
def env(deployment, tmp_path_factory):
    directory = tmp_path_factory.mktemp("deployments")
    deployment.save(directory)
    return {"EFEDLLM_DEPLOYMENTS": str(directory)}


def cli(anvil, env, *args, account):
    return run(*args, "--rpc-url", anvil.url, "--node-account", str(account), env=env)


@pytest.fixture
def daemon(w3, deployment, tmp_path):
    """A verifier daemon for node account ``index`` keeping its state in ``tmp_path/<index>`` (a second call for
    the same index is the same verifier restarted)."""

    def make(index: int) -> Verifier:
        protocol = Protocol(w3, deployment, Signer(w3.eth.accounts[index]))
        no_model = SimpleNamespace(recompute=None)  # nothing to open and no canaries: nothing is recomputed
        return Verifier(
            protocol, no_model, None, VerifyConfig(canaries=0), data_dir=tmp_path / str(index), progress=print
        )

    return make


def fresh_epoch(p: Protocol) -> int:
    epoch = p.current_epoch() + 1
    warp_to(p.w3, p.window_start(epoch, Phase.WORK))
    return epoch


def shares(p: Protocol, epoch: int) -> tuple[int, int]:
    """(committed, revealed) seed shares of ``epoch``."""
    return tuple(p.scoring.functions.seedShares(epoch).call())


def seed_of(p: Protocol, epoch: int) -> bytes:
    return p.ledger.functions.sampleSeed(epoch).call()


def test_verifiers_commit_reveal_and_draw_the_seed(w3, deployment, daemon):
    p = Protocol(w3, deployment)
    epoch = fresh_epoch(p)
    v8, v9 = daemon(8), daemon(9)
    v8.tick()
    v9.tick()
    scoring = p.scoring.functions
    assert shares(p, epoch) == (2, 0)
    salts = {v.me: v.state.get(epoch)["seed_salt"] for v in (v8, v9)}
    for v in (v8, v9):
        commitment, revealed = scoring.seedShareOf(epoch, v.me).call()
        salt = bytes.fromhex(salts[v.me][2:])
        assert commitment == Web3.keccak(encode(["address", "uint256", "bytes32"], [v.me, epoch, salt]))
        assert not revealed
    v9 = daemon(9)  # restarted: its salt comes back from its state file

    warp_to(w3, p.window_start(epoch, Phase.COMMIT_SCORES))
    v8.tick()  # reveals its share; the seed waits for v9's
    assert shares(p, epoch) == (2, 1) and seed_of(p, epoch) == ZERO
    assert "committed" not in v8.state.get(epoch)  # tries again on the next tick
    v9.tick()  # reveals, draws the seed from both shares, and commits (no server to score)
    assert shares(p, epoch) == (2, 2)
    mix = bytes(a ^ b for a, b in zip(*(bytes.fromhex(s[2:]) for s in salts.values())))
    expected = Web3.keccak(encode(["bytes32", "uint256", "address"], [mix, epoch, p.ledger.address]))
    assert seed_of(p, epoch) == expected
    (drawn,) = p.ledger.events.SeedDrawn().get_logs(from_block=deployment.block, argument_filters={"epoch": epoch})
    assert drawn["args"]["seed"] == expected and drawn["args"]["drawer"] == v9.me
    v8.tick()
    assert "committed" in v8.state.get(epoch) and "committed" in v9.state.get(epoch)
    assert all(scoring.seedShareOf(epoch, v.me).call()[1] for v in (v8, v9))


def test_a_withheld_seed_share_delays_the_seed_and_is_penalized(anvil, env, w3, deployment, daemon):
    p = Protocol(w3, deployment)
    epoch = fresh_epoch(p)
    quitter, v8, v9 = daemon(7), daemon(8), daemon(9)
    for v in (quitter, v8, v9):
        v.tick()
    assert shares(p, epoch) == (3, 0)
    # the quitter stops here, its share unrevealed
    args = ("verifier", "penalize", "--epoch", str(epoch), "--verifier", quitter.me)
    warp_to(w3, p.window_start(epoch, Phase.COMMIT_SCORES))
    v8.tick()
    v9.tick()
    assert shares(p, epoch) == (3, 2) and seed_of(p, epoch) == ZERO
    assert "committed" not in v8.state.get(epoch) and "committed" not in v9.state.get(epoch)
    assert_one_line_error(cli(anvil, env, *args, account=8), "owes no penalty for epoch")  # nothing drawn yet

    warp_to(w3, p.scoring.functions.seedReadyAt(epoch).call())
    v8.tick()  # drawn from the two shares revealed by now
    assert seed_of(p, epoch) != ZERO and "committed" in v8.state.get(epoch)
    assert shares(p, epoch) == (3, 2)

    done = cli(anvil, env, *args, account=8)
    assert done.returncode == 0, done.stderr
    assert f"verifier {quitter.me} committed a seed share for epoch {epoch} and withheld it" in done.stdout
    assert "slashed 0.100000 ETH" in done.stdout
    assert p.verifier_stake(quitter.me).bonded == ETHER - ETHER // 10
    assert p.scoring.functions.isPenalized(epoch, quitter.me).call()
    assert_one_line_error(cli(anvil, env, *args, account=8), "owes no penalty for epoch")
    for honest in (v8, v9):
        assert not p.scoring.functions.isPenalized(epoch, honest.me).call()


def test_verifiers_are_paid_their_part_of_the_pool(anvil, env, w3, deployment):
    server = Protocol(w3, deployment, Signer(w3.eth.accounts[SERVER]))
    server.tx.send(server.registry.functions.register("http://127.0.0.1:9", 0, 30), value=2 * ETHER)
    epoch = fresh_epoch(server)  # a registration counts from the next full epoch
    funded = 3 * ETHER
    server.tx.send(server.pool.functions.fundEpoch(epoch), value=funded)
    warp_to(w3, server.window_start(epoch, Phase.COMMIT_WORK))
    server.tx.send(server.ledger.functions.commitWork(epoch, Web3.keccak(text="work"), 10))
    paid = {w3.eth.accounts[v]: Protocol(w3, deployment, Signer(w3.eth.accounts[v])) for v in (8, 9)}
    warp_to(w3, server.window_start(epoch, Phase.COMMIT_SCORES))
    salt = Web3.keccak(text="salt")
    for me, v in paid.items():
        digest = v.scoring.functions.scoresHash(me, epoch, [server.signer.address], [ONE], salt).call()
        v.tx.send(v.scoring.functions.commitScores(epoch, digest))
    warp_to(w3, server.window_start(epoch, Phase.REVEAL_SCORES))
    for v in paid.values():
        v.tx.send(v.scoring.functions.revealScores(epoch, [server.signer.address], [ONE], salt))
    warp_to(w3, server.window_start(epoch, Phase.FINALIZE))
    server.tx.send(server.scoring.functions.finalize(epoch, [server.signer.address]))
    warp_to(w3, server.window_start(epoch, Phase.SETTLED))

    pool = server.pool.functions
    size = pool.poolSize(epoch).call()
    pot = size * PARAMS.verifier_share // ONE
    assert server.pool_of(epoch).verifiers == 2 and pool.verifierPot(epoch).call() == pot
    assert all(pool.isPaidVerifier(epoch, me).call() for me in paid)

    status = cli(anvil, env, "verifier", "status", account=8)
    assert status.returncode == 0, status.stderr
    assert (
        f"{pot // 2 / ETHER:.6f} ETH claimable for epoch {epoch}; claim with `efedllm verifier claim`" in status.stdout
    )
    assert "verifiers share 5.00% of each pool" in status.stdout
    for index in (8, 9):
        claimed = cli(anvil, env, "verifier", "claim", account=index)
        assert claimed.returncode == 0, claimed.stderr
        assert f"claimed {pot // 2 / ETHER:.6f} ETH for epoch {epoch}" in claimed.stdout
    again = cli(anvil, env, "verifier", "claim", account=8)
    assert again.returncode == 0 and "nothing to claim" in again.stdout
    server_claim = cli(anvil, env, "server", "claim", account=SERVER)
    assert server_claim.returncode == 0 and "claimed" in server_claim.stdout, server_claim.stderr

    amounts = {
        log["args"]["server"]: log["args"]["amount"]
        for log in server.pool.events.RewardsClaimed().get_logs(
            from_block=deployment.block, argument_filters={"epoch": epoch}
        )
    }
    assert amounts == {server.signer.address: size - pot, **{me: pot // 2 for me in paid}}
    assert sum(amounts.values()) + pot % 2 == size == funded  # all paid but the dust of pot / 2
    assert server.pool_of(epoch).claimed == sum(amounts.values())
