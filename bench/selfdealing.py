"""Does self-dealing pay? An operator's server and client pay each other, beside an honest server, on real contracts.

    python bench/selfdealing.py

On Anvil, with the contracts deployed through `efedllm.chain.deploy`, one epoch under each reward rule:

* an honest server (1 ETH staked) serves 10 steps that a real client asks and pays for (0.01 ETH of receipts);
* a dealer's server (1 ETH staked) "serves" 1,000 steps that the dealer's own client pays for (1 ETH of receipts,
  deposited, signed and redeemed through Payments: the fee goes from one pocket of the operator to the other);
* governance funds the epoch's pool with 10 ETH; a staked verifier scores both servers at acc = 1.

Every balance is read from the chain before and after (gas at the node's real price included; stakes stay
bonded and are not counted). The same epoch is run again with the dealer's server staked and verified but no
self-dealing, and the difference is what self-dealing earned the operator. Under the paper's work rule it buys
most of the pool; under the stake rule (`--reward-rule stake`) it earns nothing and costs its gas.
"""

from __future__ import annotations

import sys

from eth_utils import keccak

from efedllm.chain.anvil import Anvil, AnvilConfig, warp_to
from efedllm.chain.compile import compile_contracts
from efedllm.chain.connection import Signer, connect
from efedllm.chain.deploy import deploy
from efedllm.chain.params import ETHER, ONE, ProtocolParams
from efedllm.chain.protocol import Phase, Protocol
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.cli.common import table
from efedllm.receipts import Receipt, typed_signer

POOL, HONEST_FEES, DEALT_FEES = 10 * ETHER, ETHER // 100, ETHER


def run_epoch(w3, artifacts, *, rule: int, dealing: bool) -> dict[str, int]:
    a = w3.eth.accounts
    gov, verifier, honest, client, dealer, dealer_client = a[0], a[1], a[2], a[3], a[4], a[5]
    params = ProtocolParams(reward_rule=rule, epoch_length=600, unbonding_period=2000)
    deployment = deploy(
        w3,
        Transactor(w3, Signer(gov), ErrorDecoder(x.abi for x in artifacts.values())),
        params=params,
        artifacts=artifacts,
        verifiers=[verifier],
    )
    as_ = lambda who: Protocol(w3, deployment, Signer(who))  # noqa: E731
    p = as_(gov)
    as_(verifier).tx.send(p.stakes.functions.stake(), value=params.min_verifier_stake)
    for server in (honest, dealer):
        as_(server).tx.send(p.registry.functions.register(f"http://{server[2:8]}:1", 0, 30), value=ETHER)
    epoch = p.current_epoch() + 1
    p.tx.send(p.pool.functions.fundEpoch(epoch), value=POOL)
    start = {who: w3.eth.get_balance(who) for who in (honest, client, dealer, dealer_client)}

    warp_to(w3, p.window_start(epoch, Phase.WORK))
    pays = [(client, honest, HONEST_FEES)] + ([(dealer_client, dealer, DEALT_FEES)] if dealing else [])
    signed = {}
    for payer, server, amount in pays:
        as_(payer).tx.send(p.payments.functions.deposit(), value=amount)
        receipt = Receipt(client=payer, server=server, epoch=epoch, amount=amount)
        signed[server] = (receipt, typed_signer(w3, Signer(payer))(p.receipt_domain.data(receipt)))
    work = {honest: 10} | ({dealer: 1000} if dealing else {})

    warp_to(w3, p.window_start(epoch, Phase.COMMIT_WORK))
    for server, units in work.items():
        as_(server).tx.send(p.ledger.functions.commitWork(epoch, keccak(text=f"{server}{epoch}"), units))
    for server, (receipt, signature) in signed.items():
        as_(server).tx.send(p.payments.functions.redeem(receipt.as_tuple(), signature))
        as_(server).tx.send(p.payments.functions.withdrawFees())

    warp_to(w3, p.window_start(epoch, Phase.COMMIT_SCORES))
    p.tx.send(p.scoring.functions.drawSeed(epoch))
    servers = sorted((honest, dealer), key=lambda s: int(s, 16))
    salt = b"\x01" * 32
    digest = p.scoring.functions.scoresHash(verifier, epoch, servers, [ONE, ONE], salt).call()
    as_(verifier).tx.send(p.scoring.functions.commitScores(epoch, digest))
    warp_to(w3, p.window_start(epoch, Phase.REVEAL_SCORES))
    as_(verifier).tx.send(p.scoring.functions.revealScores(epoch, servers, [ONE, ONE], salt))
    warp_to(w3, p.window_start(epoch, Phase.FINALIZE))
    p.tx.send(p.scoring.functions.finalize(epoch, servers))
    warp_to(w3, p.window_start(epoch, Phase.SETTLED))
    for server in (honest, dealer):
        if p.pool.functions.shareOf(epoch, server).call():
            as_(server).tx.send(p.pool.functions.claimRewards([epoch]))
    end = {who: w3.eth.get_balance(who) for who in start}
    return {
        "honest": end[honest] - start[honest],
        "operator": end[dealer] + end[dealer_client] - start[dealer] - start[dealer_client],
    }


def eth(wei: int) -> str:
    return f"{wei / ETHER:+.6f}"


def main() -> int:
    artifacts = compile_contracts()
    rows = []
    for rule, name in ((0, "work (the paper's)"), (1, "stake")):
        results = {}
        for dealing in (True, False):
            with Anvil(AnvilConfig(port=0, accounts=8)) as anvil:
                print(f"{name}: epoch {'with' if dealing else 'without'} self-dealing ...", file=sys.stderr)
                results[dealing] = run_epoch(connect(anvil.url), artifacts, rule=rule, dealing=dealing)
        gain = results[True]["operator"] - results[False]["operator"]
        rows.append(
            [
                name,
                eth(results[True]["honest"]),
                eth(results[True]["operator"]),
                eth(results[False]["operator"]),
                eth(gain),
            ]
        )
    print(
        f"\nOne epoch, pool {POOL // ETHER} ETH; the dealer pays itself {DEALT_FEES / ETHER:g} ETH for 1,000 steps; ETH\n"
    )
    headers = ["reward rule", "honest server", "dealer (server+client)", "same, not dealing", "self-dealing earned"]
    print(table(headers, rows))
    print("\nself-dealing earned: what the operator gained by paying itself, gas included (negative: it lost)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
