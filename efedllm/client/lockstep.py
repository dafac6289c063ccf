"""Lockstep: a process's concurrent generations send their decode steps to each server together (issue 16).

A server batches the decode steps of different sessions that reach it together (server/batching.py), and a batch
of 16 one-token steps costs about what 2 or 3 steps cost alone (the layers' weights are read once for all: on the
2-core machine 10 layers of SmolLM2 take 22 ms for one row and 38 ms for 16). But many sessions of one client
process, left to themselves, spread out along the route: some at the first server, some at the second, some at the
LM head, so every server sees batches of 2 or 3 (bench/load.py measured a mean batch of 2.4 to 3 with 16 sessions)
and the CPU goes to reading weights again and again.

This client knows where each of its sessions is, so before a decode step goes to a server it waits until no other
session of the process still has that server ahead of it in this token's route: the ones behind catch up and all
are sent at once, and the server runs them as one batch. Sessions converge to moving together along the route
within a token or two, as Petals' clients send one batch of sequences. What each session computes is unchanged
(server batching is exact to the last bits; tests/python/test_batching.py); only when it is sent changes.

Who waits for whom, for a step to server hop ``k`` of a session's route:
- a session heading for a hop (answered by the previous one, not yet at the gate) blocks every hop from it on;
- a session waiting at, or sent to, hop ``j`` blocks the hops after ``j``;
- a session between tokens (its last hop answered, at the LM head or sampling) blocks its route's first hop only:
  the ones already past it in the next token do not wait a whole token for it, they meet it further on.
Sessions that are not decoding (a prefill, a replay after failover) are not registered and block nothing. Waits
follow the route's order, so they cannot form a cycle; and no wait lasts longer than ``max_wait_s`` (a session
stuck on a hung server holds the others back that long per hop, then they go on without it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

Hop = tuple[str, int]
"""A hop as the lockstep sees it: (server endpoint, first layer)."""

MAX_WAIT_S = 0.25
"""The longest a decode step waits for the process's other sessions before it is sent anyway."""


GROUP_TIMEOUT_S = 60.0
"""Longest a member of a group waits for its answer: the others hand their steps in within microseconds of each
other and the request is bounded by the client's request timeout (30 s); past this, something is wrong."""


class GroupTimeout(Exception):
    """A group's answer did not come in time; the session treats its server as failed (and fails over)."""


HEADING, WAITING, SENT = "heading", "waiting", "sent"
"""Where a member is about its hop: answered by the hop before and on its way; at the hop's gate; sent to it."""


class Group:
    """The decode steps released together at one server: sent as one request (``POST /steps``) by whichever
    member hands its step in last, the answers handed back to each. A member that gives up before handing its step
    in withdraws, and the others go without it."""

    def __init__(self, members: list[int], *, timeout: float = GROUP_TIMEOUT_S):
        self.timeout = timeout
        """Seconds a member waits for the group's answer (the others' steps and the request) before it gives up."""
        self._lock = threading.Lock()
        self._missing = set(members)
        self._steps: dict[int, object] = {}
        self._send = None
        self._answers: dict[int, object] = {}
        self._error: BaseException | None = None
        self._done = threading.Event()

    @property
    def size(self) -> int:
        return len(self._missing) + len(self._steps)

    def exchange(self, member: int, step, send):
        """Hand in ``member``'s step; when it is the last, call ``send(steps)`` (a list, in members' order) for
        every member's answer. Returns this member's answer, or raises what ``send`` raised."""
        with self._lock:
            self._missing.discard(member)
            self._steps[member] = step
            self._send = send
            last = not self._missing
        if last:
            self._run()
        if not self._done.wait(self.timeout):
            raise GroupTimeout(f"the steps sent together with this one were not all handed in within {self.timeout} s")
        if self._error is not None:
            raise self._error
        return self._answers[member]

    def withdraw(self, member: int) -> None:
        with self._lock:
            if member not in self._missing:
                return
            self._missing.discard(member)
            last = not self._missing and self._steps
        if last:
            self._run()

    def _run(self) -> None:
        members = list(self._steps)
        try:
            answers = self._send([self._steps[m] for m in members])
            self._answers = dict(zip(members, answers))
        except BaseException as exc:  # noqa: BLE001 - every member of the group sees the failure
            self._error = exc
        finally:
            self._done.set()


class Lockstep:
    def __init__(self, *, max_wait_s: float = MAX_WAIT_S):
        self.max_wait_s = max_wait_s
        """0 turns lockstep off: every step is sent at once, on its own."""
        self._changed = threading.Condition()
        self._where: dict[int, tuple[tuple[Hop, ...], int, str]] = {}
        """Member -> (its route, the hop it is at or heading for, HEADING / WAITING / SENT)."""
        self._released: dict[int, Group | None] = {}
        """Members released from a gate by another member, with the group they were sent in."""
        self.waits = 0
        """Steps that waited for other sessions (for tests and benchmarks)."""
        self.groups = 0
        """Groups of several steps released together."""

    def arrive(self, member: int, route: Sequence[Hop], position: int) -> Group | None:
        """``member`` (a session) is about to send a decode step to ``route[position]``: wait until no other
        member still has that hop ahead of it, or ``max_wait_s``. Returns the group of steps released together
        with this one (the member sends its step through it), or None when it goes alone."""
        route = tuple(route)
        if self.max_wait_s <= 0:
            return None
        hop = route[position]
        deadline = time.monotonic() + self.max_wait_s
        with self._changed:
            self._where[member] = (route, position, WAITING)
            self._changed.notify_all()
            waited = False
            while member not in self._released:
                left = deadline - time.monotonic()
                if not self._behind(member, hop) or left <= 0:
                    self._release(hop)
                    break
                waited = True
                self._changed.wait(left)
            self.waits += waited
            return self._released.pop(member)

    def _release(self, hop: Hop) -> None:
        """Release every member waiting at ``hop``'s gate, as one group."""
        members = [m for m, (r, p, phase) in self._where.items() if phase == WAITING and p < len(r) and r[p] == hop]
        group = Group(members) if len(members) > 1 else None
        self.groups += group is not None
        for m in members:
            route, position, _ = self._where[m]
            self._where[m] = (route, position, SENT)
            self._released[m] = group
        self._changed.notify_all()

    def answered(self, member: int, route: Sequence[Hop], position: int) -> None:
        """``route[position]`` answered ``member``'s step: it heads for the next hop (after the last one: the LM
        head, then the first hop of the next token)."""
        if self.max_wait_s <= 0:
            return
        with self._changed:
            self._where[member] = (tuple(route), position + 1, HEADING)
            self._changed.notify_all()

    def coming(self, member: int, route: Sequence[Hop]) -> None:
        """``member`` runs its prompt (a prefill, not grouped) and then decodes: count it as coming to the first
        hop, so that the sessions already decoding wait there for it (up to ``max_wait_s``) rather than step alone,
        a row at a time, while the prompts of the others are still running."""
        if self.max_wait_s <= 0:
            return
        with self._changed:
            route = tuple(route)
            self._where[member] = (route, len(route), HEADING)
            self._changed.notify_all()

    def leave(self, member: int) -> None:
        """``member``'s generation ended (or it is replaying): it blocks nobody."""
        with self._changed:
            self._released.pop(member, None)
            if self._where.pop(member, None) is not None:
                self._changed.notify_all()

    def _behind(self, member: int, hop: Hop) -> bool:
        """Whether some other member will still come to ``hop`` in this token."""
        for other, (route, position, phase) in self._where.items():
            if other == member:
                continue
            if position >= len(route):  # between tokens: coming to the first hop
                ahead = route[:1]
            elif phase == HEADING:  # answered by the hop before: coming to this one and all after it
                ahead = route[position:]
            else:  # at this hop's gate or sent there: coming to the hops after it
                ahead = route[position + 1 :]
            if hop in ahead:
                return True
        return False


LOCKSTEP = Lockstep()
"""This process's lockstep, shared by all its sessions (``InferenceSession(lockstep=...)`` overrides it)."""
