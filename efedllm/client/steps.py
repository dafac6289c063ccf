"""Sending one step to a server: paid, its signed answer checked, alone or with the process's other steps for it.

``send_step`` is the one place a client step is sent from: users' sessions (client/session.py) and verifiers'
canaries (verifier/canaries.py) alike, so that a server cannot tell them apart by their requests. A decode step
released together with other sessions' steps for the same server (client/lockstep.py) travels in one request with
them (``POST /steps``). Paid steps travel grouped too: whichever member sends the group signs each paying
client's receipts for its steps there, cumulative in the request's order, holding that server's turn for all of
them (client/payments.py ``pay_steps``); the server checks them in that order, each on top of the ones before it
(server/payments.py). When the server refuses the request before running any of it (a 4xx), each step goes again
alone, paid alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from efedllm.client.answers import AnswerChecker
from efedllm.client.lockstep import Group, GroupTimeout
from efedllm.client.payments import Paid, Payer
from efedllm.client.routing import Peer
from efedllm.receipts import UNPAID
from efedllm.rpc.client import ServerClient, ServerFailure, ServerRefused

REFUSED_BEFORE_RUNNING = {402, 404, 408, 413, 429, 507}
"""Statuses a server answers ``POST /steps`` with before it runs any of the steps (server/app.py
``forward_steps``): every session is as it was, and each step may go again alone."""


@dataclass(frozen=True, kw_only=True)
class GroupedStep:
    """What a member hands its group: its step and, for a paid step, who pays (the receipt is signed when the
    group is sent, in the request's order)."""

    session: str
    hidden: torch.Tensor
    headers: dict[str, str]
    payer: Payer | None = None
    peer: Peer | None = None
    layers: int = 0


def send_step(
    client: ServerClient,
    *,
    peer: Peer,
    session: str,
    start: int,
    end: int,
    past: int,
    hidden: torch.Tensor,
    answers: AnswerChecker | None,
    payer: Payer | None,
    max_tokens: int = 1 << 30,
    group: tuple[Group, int] | None = None,
) -> torch.Tensor:
    """``hidden`` through layers [start, end) of ``peer``'s ``session`` (``past`` tokens in): paid with a receipt
    when ``peer`` has a price, and its signed answer checked before the output is used. ``max_tokens``: the most
    tokens the answer may decode to. ``group``: (the group of steps this one goes to its server with, this
    session's place in it; client/lockstep.py): the step travels in one request with the others' (``POST
    /steps``), is paid and checked all the same; when the server refuses that request before running any of it
    (a 4xx), the step goes again alone."""
    paid_in_group = group is not None and payer is not None and bool(peer.price) and peer.address is not None
    paid = Paid(headers={}, digest=UNPAID, served=lambda: None)
    if payer is not None and not paid_in_group:
        try:
            paid = payer.pay(peer=peer, tokens=hidden.shape[1], layers=end - start)
        except BaseException:
            if group is not None:
                group[0].withdraw(group[1])  # the others go without this step
            raise

    def checked(digest: bytes):
        if answers is None:
            return None

        def check(output: torch.Tensor, headers) -> None:
            kept = answers.check(
                endpoint=peer.endpoint,
                address=peer.address,
                session=session,
                start=start,
                end=end,
                past=past,
                output=output,
                receipt=digest,
                headers=headers,
            )
            if payer is not None and peer.address is not None:
                payer.saw_epoch(peer.address, kept.answer.epoch)

        return check

    try:
        if group is not None:
            step = GroupedStep(
                session=session,
                hidden=hidden.to(client.wire_dtype(session, hidden.dtype)),
                headers=paid.headers,
                payer=payer if paid_in_group else None,
                peer=peer if paid_in_group else None,
                layers=end - start,
            )
            output = _with_group(client, group, step, checked=checked, dtype=hidden.dtype)
            if output is not None:
                paid.served()
                return output
            if paid_in_group:  # refused as a group: alone, paid alone
                paid = payer.pay(peer=peer, tokens=hidden.shape[1], layers=end - start)
        output = client.forward(
            session, hidden, max_tokens=max_tokens, answered=checked(paid.digest), headers=paid.headers
        )
    except BaseException:
        if group is not None:
            group[0].withdraw(group[1])
        paid.abandon()
        raise
    paid.served()
    return output


def _with_group(
    client: ServerClient, group: tuple[Group, int], step: GroupedStep, *, checked, dtype: torch.dtype
) -> torch.Tensor | None:
    """The step's output, sent with its group (None: the server refused the group's request before running it:
    the caller sends the step alone)."""
    together, member = group
    try:
        output, answer_headers, digest = together.exchange(member, step, lambda steps: _send_group(client, steps))
    except GroupTimeout as exc:
        raise ServerFailure(client.endpoint, str(exc), cause="group timeout") from None
    except ServerRefused:
        return None
    except ServerFailure as exc:
        if exc.status not in REFUSED_BEFORE_RUNNING:
            raise
        return None
    check = checked(digest)
    if check is not None:
        check(output, answer_headers)
    return output.to(dtype)


def _send_group(client: ServerClient, steps: list[GroupedStep]) -> list[tuple[torch.Tensor, dict, bytes]]:
    """Send a group's steps in one request, paying first for those that pay: each paying client's receipts for
    its steps, cumulative in the request's order. (output, answer headers, the digest of the receipt that paid)
    per step, in order."""
    paid: list[Paid | None] = [None] * len(steps)
    payers: dict[int, list[int]] = {}
    for i, step in enumerate(steps):
        if step.payer is not None:
            payers.setdefault(id(step.payer), []).append(i)
    settling: list[Paid] = []
    # Each payer's turn at this server is taken in one order (its client address) by every group: no deadlock.
    order = sorted(payers.values(), key=lambda members: (steps[members[0]].payer.client, id(steps[members[0]].payer)))
    try:
        for members in order:
            first = steps[members[0]]
            receipts = first.payer.pay_steps(peer=first.peer, steps=[(1, steps[i].layers) for i in members])
            settling.append(receipts[0])
            for i, receipt in zip(members, receipts):
                paid[i] = receipt
        answers = client.forward_steps(
            [(s.session, s.hidden, paid[i].headers if paid[i] else s.headers) for i, s in enumerate(steps)]
        )
    except BaseException:
        for receipt in settling:
            receipt.abandon()
        raise
    for receipt in settling:
        receipt.served()
    return [(output, headers, paid[i].digest if paid[i] else UNPAID) for i, (output, headers) in enumerate(answers)]
