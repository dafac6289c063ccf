"""Canaries that cannot be recognised: fresh prompts, sent as an ordinary client, paid from a client's account.

A canary is worth something only while a server cannot tell it from a client's session: one that can answers
canaries honestly and cheats everyone else. So a canary differs from a client's session in nothing a server sees:

- its prompt is new each time (verifier/prompts.py: a fixed list is trivially recognised);
- its requests are a client's, in a client's order, through the client's own code (verifier/remote.py
  ``run_canary``): the probe of ``/info``, a session, each step sent by client/steps.py ``send_step`` with the
  server's signed answer checked (client/answers.py; an answer that fails the check is fraud, since the server
  signed it), on connections of its own, never those of the verifier's signed openings;
- it pays a priced server as a client does (client/payments.py), with receipts signed by a *canary account*, a
  client account that is not the verifier's: receipts name their client, and servers redeem them on chain.

The canary account is ``--canary-keystore`` or $EFEDLLM_CANARY_PRIVATE_KEY (``--canary-node-account`` on a dev
chain). By default on a dev chain it is a fresh account of this verifier's own, its key derived from the verifier's
key (so each verifier has its own and keeps it across restarts) and its ether given by the node
(``anvil_setBalance`` on Anvil: no transaction links it to anyone; on Ganache a transfer from an unlocked account
that holds no verifier role). It must not be a verifier's. It needs a deposit in Payments, and the operator funds it through means not linked to the verifier: a
deposit sent from the verifier's own address, or ether moved from it to the canary account, would link the two on
chain for every server to see. Without a deposit that covers a canary (with what the account still owes for
epochs not yet redeemed), canaries to priced servers are skipped, and the verifier says so once; free servers
still get theirs. Give each verifier an account of its own (two payers of one account would sign clashing
receipts).

A busy client's concurrent sessions send their decode steps to a server together, in one request (client/lockstep.py):
in an epoch drawn at random per server (``--grouped-canaries``) the canaries run ``--canary-group`` at once and
their decode steps travel so too, through a lockstep of their own; otherwise one at a time, as a quiet client's.

What remains linkable: the canary account is one pseudonym, used every epoch, in the CommitScores window, from the
verifier's network address; a server profiling its clients over many epochs may single it out (docs/SECURITY.md).
"""

from __future__ import annotations

import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from eth_account import Account
from eth_utils import keccak

from efedllm.chain.connection import Signer, load_signer
from efedllm.chain.deploy import DEV_CHAIN_IDS
from efedllm.chain.explain import ether
from efedllm.chain.node import give_ether
from efedllm.chain.params import ETHER
from efedllm.chain.protocol import Protocol
from efedllm.client.answers import AnswerChecker
from efedllm.client.lockstep import Lockstep
from efedllm.client.payments import Payer
from efedllm.errors import EfedError
from efedllm.receipts import AnswerDomain, dev_account, typed_signer
from efedllm.verifier.checks import Verdict
from efedllm.verifier.config import VerifierAccount, VerifyConfig
from efedllm.verifier.prompts import fresh_prompt
from efedllm.verifier.remote import Target, canary_route, run_canary

log = logging.getLogger("efedllm.verifier")
CANARY_KEY_ENV = "EFEDLLM_CANARY_PRIVATE_KEY"
CANARY_KEYSTORE_PASSWORD_ENV = "EFEDLLM_CANARY_KEYSTORE_PASSWORD"
CANARY_WAIT_S = 5.0
"""How long a grouped canary's decode step waits for the others (client/lockstep.py): each canary computes the
verifier's own reference between its steps, and the canaries start their prompts at once."""


def load_canary_signer(protocol: Protocol, account: VerifierAccount) -> Signer | None:
    """The account canaries pay from (see the module's docstring), or None where there is none; EfedError for a
    verifier's account (the verifier's own or another's: receipts signed by it would name a verifier)."""
    w3, me = protocol.w3, protocol.signer.address
    if account.canary_keystore is not None or os.environ.get(CANARY_KEY_ENV) or account.canary_node_account is not None:
        signer = load_signer(
            w3,
            keystore=account.canary_keystore,
            node_account=account.canary_node_account,
            key_env=CANARY_KEY_ENV,
            password_env=CANARY_KEYSTORE_PASSWORD_ENV,
        )
        if signer.address == me or protocol.is_verifier(signer.address):
            whose = "this verifier's own" if signer.address == me else "a verifier's"
            raise EfedError(
                f"the canary account {signer.address} is {whose}: servers would see a verifier in its receipts; "
                "give a client account of its own"
            )
        return signer
    return dev_canary_signer(protocol)


DEV_CANARY_ETHER = 10 * ETHER
"""Ether a dev chain gives a verifier's derived canary account when it holds less (it deposits from it)."""


def dev_canary_signer(protocol: Protocol) -> Signer | None:
    """On a dev chain: this verifier's own canary account, keyed keccak("efedllm canary account" || the verifier's
    key), given ether by the node when it runs low; None elsewhere, or for a verifier whose key this process does
    not hold. One account per verifier: two payers of one account sign clashing cumulative receipts, and the
    servers refuse the lower ones (an unlocked node account shared by every verifier, or by a client, did that)."""
    w3 = protocol.w3
    if w3.eth.chain_id not in DEV_CHAIN_IDS:
        return None
    own = protocol.signer.account or dev_account(w3, protocol.signer.address)
    if own is None:
        return None
    canary = Account.from_key(keccak(b"efedllm canary account" + bytes(own.key)))
    if w3.eth.get_balance(canary.address) < DEV_CANARY_ETHER // 2:
        faucets = [a for a in reversed(w3.eth.accounts) if not protocol.is_verifier(a)]
        give_ether(w3, canary.address, DEV_CANARY_ETHER, faucets=faucets)
    return Signer(canary.address, canary)


class CanaryAccount:
    """The client account a verifier's canaries pay priced servers from, and what it owes them."""

    def __init__(self, protocol: Protocol, signer: Signer, *, owed: dict[tuple[str, int], int] | None = None):
        self.protocol, self.address = protocol, signer.address
        self.sign = typed_signer(protocol.w3, signer)
        self.owed: dict[tuple[str, int], int] = {} if owed is None else owed
        """(server, epoch) -> the last receipt's amount, shared by the Payer of every canary."""
        self.short = False
        """Whether the deposit was found short (said once, until it covers canaries again)."""

    def payer(self, *, cost: int) -> Payer | None:
        """A Payer for a canary costing ``cost`` wei; None (said once) when the deposit does not cover it with
        what the account owes for the last epochs, which servers may not have redeemed yet."""
        now = self.protocol.current_epoch()
        for key in [k for k in self.owed if k[1] < now - 1]:
            del self.owed[key]
        available = self.protocol.client_account(self.address).available
        needed = cost + sum(self.owed.values())
        if available < needed:
            if not self.short:
                log.error(
                    "the canary account %s has %s in Payments, short of the %s its canaries need: canaries to "
                    "priced servers are skipped until it is funded (`efedllm client deposit` signed by that account, "
                    "with ether not sent from this verifier's address, which would link the two on chain)",
                    self.address,
                    ether(available),
                    ether(needed),
                )
            self.short = True
            return None
        if self.short:
            log.warning("the canary account %s is funded: canaries to priced servers resume", self.address)
            self.short = False
        return Payer(
            client=self.address,
            sign=self.sign,
            domain=self.protocol.receipt_domain,
            epoch=self.protocol.current_epoch,
            owed=self.owed,
        )


class Canaries:
    """Each server's canaries for an epoch: ``config.canaries`` fresh prompts, each sent as a client would."""

    def __init__(
        self,
        *,
        model,
        tokenizer,
        config: VerifyConfig,
        domain: AnswerDomain,
        account: CanaryAccount | None,
        rng: random.Random,
    ):
        self.model, self.tokenizer, self.config, self.domain = model, tokenizer, config, domain
        self.account, self.rng = account, rng
        self._said_no_account = False

    def check(self, target: Target) -> list[Verdict]:
        """Verdicts of ``target``'s canaries; none for a priced server while there is no account to pay it with.

        In an epoch drawn for grouped canaries (``config.grouped_canaries`` of them, drawn per server) they run
        ``config.canary_group`` at once (at least that many in all), their decode steps sent together, as the
        concurrent sessions of a busy client are: a server that answered grouped steps wrongly and steps sent alone
        honestly would otherwise pass every canary while it cheated every busy client."""
        if self.config.canaries <= 0:
            return []
        grouped = self.rng.random() < self.config.grouped_canaries
        size = self.config.canary_group if grouped else 1
        total = max(self.config.canaries, size)
        verdicts: list[Verdict] = []
        while total > 0:
            round_ = self._round(target, min(size, total))
            if round_ is None:
                break
            verdicts += round_
            total -= min(size, total)
        return verdicts

    def _round(self, target: Target, size: int) -> list[Verdict] | None:
        """The verdicts of ``size`` canaries sent at once (their decode steps grouped, one payer for all); None
        when a priced server cannot be paid."""
        prompts = [fresh_prompt(self.model, self.tokenizer, seed=self.rng.getrandbits(64)) for _ in range(size)]
        payer = None
        if target.price:
            tokens = sum(len(p.ids) for p in prompts) + size * self.config.canary_steps
            payer = self._payer(cost=target.price * tokens * target.num_layers)
            if payer is None:
                log.info("no canary for %s: it has a price and the canary account cannot pay", target.address)
                return None
        run = partial(
            run_canary,
            target,
            self.model,
            decode_steps=self.config.canary_steps,
            tolerance=self.config.tolerance,
            answers=AnswerChecker(self.domain),
            payer=payer,
        )
        if size == 1:
            return run(prompts[0].ids)
        lockstep = Lockstep(max_wait_s=CANARY_WAIT_S)
        for member in range(size):  # each waits for the others from the start: none runs ahead alone
            lockstep.coming(member, canary_route(target))
        with ThreadPoolExecutor(max_workers=size, thread_name_prefix="canary") as pool:
            runs = [pool.submit(run, p.ids, lockstep=(lockstep, i)) for i, p in enumerate(prompts)]
            return [verdict for r in runs for verdict in r.result()]

    def _payer(self, *, cost: int) -> Payer | None:
        if self.account is not None:
            return self.account.payer(cost=cost)
        if not self._said_no_account:
            self._said_no_account = True
            log.error(
                "no canary account (--canary-keystore or $%s): canaries to priced servers are skipped",
                CANARY_KEY_ENV,
            )
        return None
