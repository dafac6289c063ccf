"""Gas of every protocol operation, and how finalize and claim scale with the number of servers.

    make bench-gas            (or: python bench/gas.py [--sizes 10 25 50 100])

Runs on a real Anvil with the real contracts, deployed through `efedllm.chain.deploy`. For each network size N
it registers N servers (spans spread over the 30 layers), lets each commit work, has 3 verifiers commit and
reveal an accuracy for every server (each staked first, each committing and revealing a seed share; 10% of servers get a failing score, so the slashing path is included),
finalizes all N in ONE transaction and lets a server claim. Targets (issue 2): cost per server flat as N grows
(no loop over all servers in a state-changing call) and finalizing 100 servers in one 30M-gas block.
Gas is deterministic, so one run suffices; no timings are taken.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from eth_utils import keccak

from efedllm import merkle
from efedllm.chain.anvil import Anvil, AnvilConfig, warp_to
from efedllm.chain.compile import compile_contracts
from efedllm.chain.connection import Signer, connect
from efedllm.chain.deploy import deploy
from efedllm.chain.params import ONE, ProtocolParams, reward_rule
from efedllm.chain.protocol import Phase, Protocol
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.cli.common import table
from efedllm.receipts import Answer, AnswerDomain, Receipt, ReceiptDomain, typed_signer
from efedllm.tasks import TaskRecord

BLOCK_GAS_LIMIT = 30_000_000
VERIFIERS = 3
TASKS = 1000
"""Steps two servers served in the epoch: a challenged answer's proof then has 10 siblings."""


def served_tree(server: str, epoch: int) -> tuple[list[TaskRecord], list[list[bytes]], bytes]:
    """TASKS task records of ``server`` in ``epoch`` (each paid by a client's receipt), their Merkle tree and the
    committed root."""
    records = [
        TaskRecord(
            epoch,
            i,
            f"s{i // 8}",
            i % 8,
            0,
            10,
            i % 8,
            keccak(b"p%d" % i),
            keccak(b"i%d" % i),
            keccak(b"o%d" % i),
            keccak(b"r%d" % i),
        )
        for i in range(TASKS)
    ]
    leaves = [r.leaf(server) for r in records]
    return records, merkle.levels(leaves), merkle.root(leaves)


def run_network(w3, artifacts, n: int, *, reward_rule: int = 0) -> dict[str, int]:
    accounts = w3.eth.accounts
    governor, client, verifiers, servers = accounts[0], accounts[1], accounts[2 : 2 + VERIFIERS], accounts[5 : 5 + n]
    params = ProtocolParams(min_verifiers=VERIFIERS, reward_rule=reward_rule)
    decoder = ErrorDecoder(a.abi for a in artifacts.values())
    deployment = deploy(
        w3, Transactor(w3, Signer(governor), decoder), params=params, artifacts=artifacts, verifiers=verifiers
    )
    as_ = lambda who: Protocol(w3, deployment, Signer(who))  # noqa: E731
    gas: dict[str, int] = {}
    for v in verifiers:  # committing scores needs minVerifierStake bonded
        receipt = as_(v).tx.send(as_(v).stakes.functions.stake(), value=params.min_verifier_stake)
        gas["stake (verifier)"] = receipt["gasUsed"]

    def send(who, call, name=None, **kw):
        receipt = as_(who).tx.send(call, **kw)
        if name:
            gas[name] = receipt["gasUsed"]
        return receipt

    p = as_(client)
    epoch = p.current_epoch() + 1  # servers registered now are paid from the next epoch, the first they serve in full
    send(client, p.pool.functions.fundEpoch(epoch), "fundEpoch", value=100 * ONE)
    span = 10
    for i, server in enumerate(servers):
        first = (i * span) % params.num_layers
        send(
            server,
            p.registry.functions.register(f"http://10.0.0.{i % 250}:8000", first, span),
            "register" if i == n - 1 else None,
            value=2 * ONE,
        )
    send(servers[0], p.registry.functions.addStake(), "addStake", value=ONE)
    send(servers[0], p.registry.functions.updateServer("http://10.0.0.1:8001", 0, span), "updateServer")
    warp_to(w3, p.window_start(epoch, Phase.WORK))
    seed_salts = [keccak(text=f"seed{v}") for v in verifiers]
    for v, salt in zip(verifiers, seed_salts, strict=True):
        share = p.scoring.functions.seedShareHash(v, epoch, salt).call()
        send(v, p.scoring.functions.commitSeed(epoch, share), "commitSeed")

    send(client, p.payments.functions.deposit(), "deposit (client)", value=ONE)
    sign = {s: typed_signer(w3, Signer(s)) for s in (client, *servers[:2])}
    trees = {s: served_tree(s, epoch) for s in servers[:2]}  # two servers commit real trees of TASKS leaves

    warp_to(w3, p.window_start(epoch, Phase.COMMIT_WORK))
    for i, server in enumerate(servers):
        root, units = (trees[server][2], TASKS) if server in trees else (keccak(text=f"root{i}"), 100 + i)
        send(server, p.ledger.functions.commitWork(epoch, root, units), "commitWork" if i == n - 1 else None)
    receipt = Receipt(client=client, server=servers[0], epoch=epoch, amount=ONE // 1000)
    signature = sign[client](ReceiptDomain(chain_id=w3.eth.chain_id, contract=p.payments.address).data(receipt))
    send(servers[0], p.payments.functions.redeem(receipt.as_tuple(), signature), "redeem (1 receipt, epoch)")
    warp_to(w3, p.window_start(epoch, Phase.COMMIT_SCORES))
    for v, salt in zip(verifiers, seed_salts, strict=True):
        send(v, p.scoring.functions.revealSeed(epoch, salt), "revealSeed")
    send(verifiers[0], p.scoring.functions.drawSeed(epoch), "drawSeed")
    bond = p.challenges.functions.BOND().call()
    challenged = {}
    for server, index, honest in ((servers[0], TASKS * 7 // 10, True), (servers[1], 3, False)):
        records = trees[server][0]
        answer = Answer.of(records[index])
        if not honest:  # what an equivocating server signed: another output than it committed
            answer = replace(answer, output_hash=keccak(b"wrong"))
        sig = sign[server](AnswerDomain(chain_id=w3.eth.chain_id, contract=p.challenges.address).data(answer))
        tx = send(client, p.challenges.functions.challenge(answer.as_tuple(), sig), "challenge", value=bond)
        challenged[server] = p.challenges.events.Challenged().process_receipt(tx)[0]["args"]["id"]
    proof = merkle.proof(trees[servers[0]][1], TASKS * 7 // 10)
    send(servers[0], p.challenges.functions.respond(challenged[servers[0]], proof), f"respond ({len(proof)} siblings)")
    ordered = sorted(servers, key=lambda a: int(a, 16))
    failing = set(ordered[::10])  # every tenth server fails: the slashing path is measured too
    accs = [ONE // 10 if s in failing else ONE for s in ordered]
    salt = b"\x11" * 32
    for v in verifiers:
        digest = p.scoring.functions.scoresHash(v, epoch, ordered, accs, salt).call()
        send(v, p.scoring.functions.commitScores(epoch, digest), "commitScores")
    warp_to(w3, p.window_start(epoch, Phase.REVEAL_SCORES))
    for v in verifiers:
        send(v, p.scoring.functions.revealScores(epoch, ordered, accs, salt), f"revealScores ({n} servers)")
    warp_to(w3, p.window_start(epoch, Phase.FINALIZE))
    send(client, p.scoring.functions.finalize(epoch, ordered), f"finalize ({n} servers)", gas=BLOCK_GAS_LIMIT - 1)
    warp_to(w3, p.window_start(epoch, Phase.SETTLED))
    payee = next(s for s in ordered if s not in failing)
    send(payee, p.pool.functions.claimRewards([epoch]), "claimRewards (1 epoch)")
    send(verifiers[0], p.pool.functions.claimRewards([epoch]), "claimRewards (verifier pay, 1 epoch)")
    send(payee, p.registry.functions.requestUnstake(ONE), "requestUnstake")
    warp_to(w3, w3.eth.get_block("latest")["timestamp"] + params.unbonding_period + 1)
    send(payee, p.registry.functions.withdraw(), "withdraw")
    send(client, p.challenges.functions.enforce(challenged[servers[1]]), "enforce (unanswered: slash)")
    gas["finalize"] = gas[f"finalize ({n} servers)"]
    gas["reveal"] = gas[f"revealScores ({n} servers)"]
    return gas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50, 100])
    parser.add_argument(
        "--reward-rule", type=reward_rule, default=0, help="work (the default deployment's) or stake", metavar="RULE"
    )
    args = parser.parse_args()
    artifacts = compile_contracts()
    results = {}
    with Anvil(AnvilConfig(port=0, accounts=max(args.sizes) + 5, gas_limit=BLOCK_GAS_LIMIT)) as anvil:
        w3 = connect(anvil.url)
        for n in args.sizes:
            print(f"network of {n} servers ...", file=sys.stderr, flush=True)
            results[n] = run_network(w3, artifacts, n, reward_rule=args.reward_rule)

    largest = results[max(args.sizes)]
    single = [k for k in largest if "servers" not in k and k not in ("finalize", "reveal")]
    print(f"\nGas per operation (network of {max(args.sizes)} servers)\n")
    print(table(["operation", "gas"], [[k, f"{largest[k]:,}"] for k in sorted(single)]))

    print("\nScaling with the number of servers N (one finalize transaction for all N; 3 verifiers)\n")
    rows = []
    base = results[min(args.sizes)]
    for n, g in results.items():
        rows.append(
            [
                n,
                f"{g['finalize']:,}",
                f"{g['finalize'] // n:,}",
                f"{g['reveal']:,}",
                f"{g['reveal'] // n:,}",
                f"{g['claimRewards (1 epoch)']:,}",
                f"{g['register']:,}",
                f"{g['finalize'] / BLOCK_GAS_LIMIT:.1%}",
            ]
        )
    print(table(["N", "finalize", "finalize/N", "reveal", "reveal/N", "claim", "register", "of 30M block"], rows))

    ratio = (largest["finalize"] / max(args.sizes)) / (base["finalize"] / min(args.sizes))
    claim_ratio = largest["claimRewards (1 epoch)"] / base["claimRewards (1 epoch)"]
    fits = largest["finalize"] < BLOCK_GAS_LIMIT
    print(
        f"\nfinalize gas per server at N={max(args.sizes)} vs N={min(args.sizes)}: {ratio:.3f}x (target: flat, ~1.0x)"
    )
    print(f"claim gas at N={max(args.sizes)} vs N={min(args.sizes)}: {claim_ratio:.3f}x (target: flat, ~1.0x)")
    print(f"finalize of {max(args.sizes)} servers fits in one 30M-gas block: {'yes' if fits else 'NO'}")
    return 0 if fits else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
