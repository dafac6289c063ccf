"""The incentive loop end to end: a cheating server is caught, slashed and replaced; honest servers are paid.

Real processes on a real chain: servers A 0:10 in bfloat16, B 10:20 with int8 weights and F 20:30 (a precision
cheat: it declares float32 on chain but computes in bfloat16, so its outputs are not what the declared configuration
computes), C 0:10 in bfloat16 with rebalancing and automatic claims on, three verifiers of which one lies, and a
client. Each server declares its configuration on chain; the verifiers recompute as declared. Two epochs:

1. The client generates through A or C, B and F. The verifiers open sampled tasks and send canaries; the liar
   reports acc 1 for everyone. F is deactivated and slashed at the epoch's finalize; nobody else is.
2. C moves to F's layers; the client generates again, through C, with identical text (C computes in bfloat16, as F
   did behind its float32 declaration). The liar now reports acc 0
   for everyone; still nobody honest is slashed. After both epochs settle, A and B claim with
   ``efedllm server claim``, C has claimed on its own, and the claims add up to each epoch's pool (funding plus
   F's slashed stake) in proportion to S_i * workUnits_i.

The verifiers stake on start (``--stake``) and draw each epoch's sampling seed from the salts they committed
while it worked. The liar answers for its lies: in each epoch its reveal is more than κ from a median, and
``finalize`` itself slashes a tenth of its stake into the pool of the epoch then current (e1's penalty into e2's
pool) and stops paying it. Verifying is paid: the two honest verifiers each claim half of the verifiers' share of
both pools (5%) on their own, and the servers' and verifiers' claims plus the rounding dust add up, to the wei, to
what was funded and slashed into the two pools.
"""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from efedllm.chain.anvil import free_port
from efedllm.chain.connection import Signer
from efedllm.chain.node import NODE_KINDS
from efedllm.chain.params import ETHER, ONE
from efedllm.chain.protocol import Outcome, Phase, Protocol, Status
from efedllm.client import DistributedModel
from efedllm.localnet import (
    EFEDLLM,
    WALKED_PARAMS,
    ServerProcess,
    VerifierProcess,
    Walker,
    start_all,
    stop_all,
    wait_for,
)

pytestmark = pytest.mark.parametrize("node_kind", NODE_KINDS, scope="module")  # Anvil and Ganache

SERVERS = {
    "A": (1, "0:10", ["--dtype", "bfloat16"]),
    "B": (2, "10:20", ["--quantize", "int8"]),
    "F": (3, "20:30", ["--fault", "lower", "--fault-as", "bfloat16"]),
    "C": (4, "0:10", ["--dtype", "bfloat16", "--rebalance", "--auto-claim"]),
}
DECLARED = {"A": "bfloat16", "B": "int8/float32", "F": "float32", "C": "bfloat16"}
VERIFIERS = (7, 8, 9)  # granted VERIFIER_ROLE at deployment (tests/support/chain.py)
PARAMS = dataclasses.replace(WALKED_PARAMS, min_verifiers=2)
LIAR = 9
PROMPTS = ("Name three animals that live in the sea.", "What is two plus two?")


@pytest.fixture(scope="module")
def net(network_files):
    root, chain, path = network_files.root, network_files.args, network_files.deployment_path

    servers = {
        name: ServerProcess(layers, free_port(), [*chain(account), *extra], log_path=root / f"{name}.log")
        for name, (account, layers, extra) in SERVERS.items()
    }
    verifiers = {
        v: VerifierProcess(
            [*chain(v), *(["--lie", "always-1"] if v == LIAR else [])], log_path=root / f"verifier-{v}.log"
        )
        for v in VERIFIERS
    }
    start_all(list(servers.values()))
    try:  # then the verifiers: seven processes loading at once starved Ganache past an RPC timeout (2026-12-07)
        start_all(list(verifiers.values()))
    except Exception:
        stop_all(list(servers.values()))
        raise
    net = {"servers": servers, "verifiers": verifiers, "chain": chain, "root": root, "path": path}
    yield net
    stop_all([*net["servers"].values(), *net["verifiers"].values()])


def generate(client) -> tuple[list[str], set[str]]:
    texts, used = [], set()
    for prompt in PROMPTS:
        texts.append(client.generate(prompt=prompt, max_new_tokens=12, eos_token_id=[])[0].tolist())
        used |= {hop.peer.address for hop in client.last_route}
    return texts, used


def test_cheater_caught_slashed_replaced_and_honest_servers_paid(w3, anvil, deployment, net):
    protocol = Protocol(w3, deployment, Signer(w3.eth.accounts[0]))
    walker = Walker(protocol, [*net["servers"].values(), *net["verifiers"].values()])
    addr = {name: w3.eth.accounts[account] for name, (account, _, _) in SERVERS.items()}
    verifiers = [w3.eth.accounts[v] for v in VERIFIERS]
    stake = {s.address: s.stake for s in protocol.servers()}
    e0 = protocol.current_epoch()
    for name, label in DECLARED.items():
        assert protocol.server(addr[name]).serving.label == label, name
        assert protocol.serving_of(addr[name], e0 + 1).label == label, name

    # ---- epoch 1: F cheats while serving
    e1 = walker.fresh_epoch()
    for epoch in (e1, e1 + 1):
        protocol.tx.send(protocol.pool.functions.fundEpoch(epoch), value=3 * ETHER)
    client = DistributedModel.from_pretrained(protocol=protocol)
    texts1, used1 = generate(client)
    assert addr["F"] in used1 and addr["B"] in used1
    walker.commitments(e1, used1)
    scores1 = walker.scores(e1, verifiers, addr.values())
    liar_address = w3.eth.accounts[LIAR]
    honest = [v for v in verifiers if v != liar_address]
    fee = PARAMS.min_verifier_stake * PARAMS.verifier_slash_fraction // ONE
    scoring, pool = protocol.scoring.functions, protocol.pool.functions
    penalized = scoring.isPenalized
    assert tuple(scoring.seedShares(e1).call()) == (3, 3)  # the seed came from all three verifiers' salts
    assert penalized(e1, liar_address).call()  # by finalize itself
    assert protocol.verifier_stake(liar_address).bonded == PARAMS.min_verifier_stake - fee
    assert not any(penalized(e1, v).call() for v in honest)
    (deviation,) = protocol.scoring.events.DeviationPenalized().get_logs(
        from_block=deployment.block, argument_filters={"epoch": e1}
    )
    assert deviation["args"]["verifier"] == liar_address and deviation["args"]["amount"] == fee
    assert [pool.isPaidVerifier(e1, v).call() for v in verifiers] == [v != liar_address for v in verifiers]
    wait_for(
        lambda: any(
            f"epoch {e1}: "
            + ("this verifier" if p.args[-1:] == ["always-1"] else f"verifier {liar_address}")
            + f" revealed acc 1.000 for {addr['F']}"
            in p.log_tail(10**6)
            for p in net["verifiers"].values()
        ),
        "a verifier to report the liar's deviation penalty",
        timeout=30,
        processes=net["verifiers"].values(),
    )
    assert scores1[addr["F"]].outcome == Outcome.SLASHED and scores1[addr["F"]].acc == 0
    caught_f = [
        line
        for v in VERIFIERS
        if v != LIAR
        for line in net["verifiers"][v].log_tail(10**6).splitlines()
        if f"epoch {e1}: {addr['F']} acc 0.000" in line
    ]
    assert caught_f and all("deviates" in line for line in caught_f), caught_f  # the precision, not a timeout
    assert ONE in protocol.scoring.functions.revealedAccuracies(e1, addr["F"]).call()  # the liar's vote
    for name in "ABC":
        assert scores1[addr[name]].outcome == Outcome.PASSED, name
    f = next(s for s in protocol.servers() if s.address == addr["F"])
    assert f.status == Status.DEACTIVATED and f.times_slashed == 1 and f.stake == stake[addr["F"]] // 2

    # ---- F's layers are taken over by C, which had spare capacity (its layers are also served by A)
    wait_for(
        lambda: protocol.missing_layers() == [],
        "C to take over layers 20:30",
        timeout=120,
        processes=[net["servers"]["C"]],
    )
    c = next(s for s in protocol.servers() if s.address == addr["C"])
    assert (c.first_layer, c.num_layers) == (20, 10)
    liar = net["verifiers"][LIAR]
    liar.stop()
    net["verifiers"][LIAR] = liar = VerifierProcess(
        [*net["chain"](LIAR), "--lie", "always-0"], log_path=net["root"] / "verifier-liar-0.log"
    )
    liar.start().wait_ready()
    walker.processes = [*net["servers"].values(), *net["verifiers"].values()]

    # ---- epoch 2: the same text, now through C
    e2 = e1 + 1
    assert protocol.current_epoch() == e2
    texts2, used2 = generate(client)
    assert texts2 == texts1
    assert addr["F"] not in used2 and addr["C"] in used2
    walker.commitments(e2, used2)
    scores2 = walker.scores(e2, verifiers, [addr[n] for n in "ABC"])
    assert tuple(scoring.seedShares(e2).call()) == (3, 3)  # the restarted liar revealed its share too
    assert penalized(e2, liar_address).call() and not any(penalized(e2, v).call() for v in honest)
    assert [pool.isPaidVerifier(e2, v).call() for v in verifiers] == [v != liar_address for v in verifiers]
    for name in "ABC":
        assert scores2[addr[name]].outcome == Outcome.PASSED, name
        assert 0 in protocol.scoring.functions.revealedAccuracies(e2, addr[name]).call()  # the liar's vote

    # ---- both epochs settle; A and B claim by command, C has claimed automatically
    walker.warp(e2, Phase.SETTLED)
    for name in "AB":
        account = SERVERS[name][0]
        out = subprocess.run(
            [
                *EFEDLLM,
                "server",
                "claim",
                "--rpc-url",
                anvil.url,
                "--deployment",
                str(net["path"]),
                "--node-account",
                str(account),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0 and "claimed" in out.stdout, out.stderr
    wait_for(
        lambda: all(
            pool.hasClaimed(e, addr["C"]).call() or not pool.rewardWeight(e, addr["C"]).call() for e in (e1, e2)
        ),
        "C's automatic claims",
        timeout=120,
        processes=[net["servers"]["C"]],
    )
    wait_for(
        lambda: all(pool.hasClaimed(e, v).call() for e in (e1, e2) for v in honest),
        "the honest verifiers' claims of their pay",
        timeout=120,
        processes=net["verifiers"].values(),
    )

    claims = {
        (log["args"]["epoch"], log["args"]["server"]): log["args"]["amount"]
        for log in protocol.pool.events.RewardsClaimed().get_logs(from_block=deployment.block)
    }
    held = 2 * 3 * ETHER + stake[addr["F"]] // 2 + fee  # funded, F's slashed stake, the liar's e1 penalty
    paid_out = dust = 0
    for epoch in (e1, e2):
        p = protocol.pool_of(epoch)
        size = pool.poolSize(epoch).call()
        assert size == 3 * ETHER + (stake[addr["F"]] // 2 if epoch == e1 else fee)  # e2: the liar's e1 penalty
        pot = size * PARAMS.verifier_share // ONE
        assert p.verifiers == len(honest) == 2 and pool.verifierPot(epoch).call() == pot > 0
        weights = {}
        for name in "ABC":
            s = addr[name]
            score = protocol.score_of(epoch, s)
            work = protocol.commitment_of(epoch, s).work_units
            weights[s] = pool.rewardWeight(epoch, s).call()
            assert weights[s] == score.score * work  # S_i * workUnits_i
            if weights[s]:
                assert pool.hasClaimed(epoch, s).call()
        total = sum(weights.values())
        assert p.total_weight == total and total > 0
        expected = {s: (size - pot) * w // total for s, w in weights.items() if w}  # the servers' part
        expected |= {v: pot // len(honest) for v in honest}  # the verifiers' equal parts
        assert {a: amount for (e, a), amount in claims.items() if e == epoch} == expected
        assert pool.shareOf(epoch, liar_address).call() == 0 and (epoch, liar_address) not in claims
        rounding = (size - pot) - sum((size - pot) * w // total for w in weights.values())
        rounding += pot - len(honest) * (pot // len(honest))
        assert 0 <= rounding < len(weights) + len(honest) and p.claimed == size - rounding
        paid_out += sum(expected.values())
        dust += rounding
    assert paid_out + dust == held  # to the wei
    assert any("of verifier pay for" in net["verifiers"][v].log_tail(10**6) for v in VERIFIERS if v != LIAR)
    assert pool.rewardWeight(e1, addr["F"]).call() == 0
    verdict = f"epoch {e1} verdict: acc 0.0000, S 0.0000 -> slashed; slashed {stake[addr['F']] / 2 / ETHER:.6f} ETH"
    wait_for(
        lambda: verdict in net["servers"]["F"].log_tail(10**6),
        "F to log its verdict",
        timeout=30,
        processes=[net["servers"]["F"]],
    )  # the server itself says what happened to its stake
    for s in protocol.servers():
        if s.address != addr["F"]:
            assert s.status == Status.ACTIVE and s.times_slashed == 0
