"""The client's lockstep (efedllm/client/lockstep.py): a process's sessions send their decode steps to a server
together, so that it can batch them; behind ones are waited for, ahead ones are not, and no wait outlasts the cap.

Threads stand in for the sessions of one client process (as in ``efedllm api`` or bench/load.py); what they wait
for is observed with events, not timed, except the cap, which is checked to end the wait at all."""

from __future__ import annotations

import threading
import time

import pytest

from efedllm.client.lockstep import GroupTimeout, Lockstep

ROUTE = [("http://a", 0), ("http://b", 10), ("http://c", 20)]
LONG = 30.0
"""A cap no test reaches: a wait that ends does so because the one waited for came."""


def arrive_in_thread(lockstep: Lockstep, member: int, position: int, route=ROUTE) -> threading.Event:
    """``member`` arrives at ``route[position]`` on its own thread; the event is set when it may send."""
    sent = threading.Event()

    def go():
        lockstep.arrive(member, route, position)
        sent.set()

    threading.Thread(target=go, daemon=True).start()
    return sent


def test_a_session_alone_never_waits():
    lockstep = Lockstep(max_wait_s=LONG)
    started = time.monotonic()
    for position in range(len(ROUTE)):
        lockstep.arrive(1, ROUTE, position)
        lockstep.answered(1, ROUTE, position)
    assert time.monotonic() - started < 1.0
    assert lockstep.waits == 0


def test_a_step_waits_for_a_session_behind_it_and_both_go_together():
    lockstep = Lockstep(max_wait_s=LONG)
    lockstep.arrive(2, ROUTE, 0)  # session 2 at the first server's gate (alone there: sent at once)
    sent = arrive_in_thread(lockstep, 1, 1)  # session 1 is at the second server: 2 will come there too
    assert not sent.wait(0.3)
    lockstep.answered(2, ROUTE, 0)  # the first server answered 2: it heads for the second
    assert not sent.wait(0.3)
    lockstep.arrive(2, ROUTE, 1)  # 2 reaches the second server's gate: both are sent
    assert sent.wait(5)
    assert lockstep.waits == 1


def test_a_step_does_not_wait_for_a_session_ahead_of_it():
    lockstep = Lockstep(max_wait_s=LONG)
    lockstep.arrive(2, ROUTE, 2)  # session 2 is at the last server, past the first two
    for position in range(2):
        sent = arrive_in_thread(lockstep, 1, position)
        assert sent.wait(5)
        lockstep.answered(1, ROUTE, position)


def test_the_first_hop_waits_for_sessions_between_tokens_the_others_do_not():
    lockstep = Lockstep(max_wait_s=LONG)
    lockstep.arrive(2, ROUTE, 2)
    lockstep.answered(2, ROUTE, 2)  # session 2's token is done: at the LM head, the first server next
    first = arrive_in_thread(lockstep, 1, 0)
    assert not first.wait(0.3)
    lockstep.arrive(2, ROUTE, 0)
    assert first.wait(5)
    # one at the LM head does not hold back a step to the second server: it is a token ahead there
    lockstep.answered(2, ROUTE, 0)
    lockstep.arrive(2, ROUTE, 1)
    lockstep.answered(2, ROUTE, 1)
    lockstep.answered(1, ROUTE, 0)
    lockstep.answered(2, ROUTE, 2)
    assert arrive_in_thread(lockstep, 1, 1).wait(5)


def test_a_session_that_leaves_releases_those_waiting_for_it():
    lockstep = Lockstep(max_wait_s=LONG)
    lockstep.arrive(2, ROUTE, 0)
    sent = arrive_in_thread(lockstep, 1, 2)
    assert not sent.wait(0.3)
    lockstep.leave(2)  # its generation ended, or it fails over and replays
    assert sent.wait(5)


def test_other_routes_hold_back_only_at_servers_they_share():
    lockstep = Lockstep(max_wait_s=LONG)
    other = [("http://x", 0), ("http://y", 10), ("http://c", 20)]
    lockstep.arrive(2, other, 0)  # session 2 comes to http://c later, never to http://b
    assert arrive_in_thread(lockstep, 1, 1).wait(5)
    lockstep.answered(1, ROUTE, 1)
    last = arrive_in_thread(lockstep, 1, 2)
    assert not last.wait(0.3)
    lockstep.leave(2)
    assert last.wait(5)


def test_no_wait_outlasts_the_cap():
    lockstep = Lockstep(max_wait_s=0.2)
    lockstep.arrive(2, ROUTE, 0)  # session 2 never comes on (a hung server)
    started = time.monotonic()
    lockstep.arrive(1, ROUTE, 2)
    assert 0.15 < time.monotonic() - started < 5
    assert lockstep.waits == 1


def test_a_zero_cap_turns_it_off():
    lockstep = Lockstep(max_wait_s=0)
    lockstep.arrive(2, ROUTE, 0)
    started = time.monotonic()
    lockstep.arrive(1, ROUTE, 2)
    assert time.monotonic() - started < 1.0


# ------------------------------------------------------------------------------------------------ groups


def arrive_all(lockstep: Lockstep, members: list[int], position: int) -> dict[int, object]:
    """Every member arrives at ``ROUTE[position]`` on its own thread; their groups, once all are released."""
    groups: dict[int, object] = {}
    threads = [
        threading.Thread(target=lambda m=m: groups.__setitem__(m, lockstep.arrive(m, ROUTE, position))) for m in members
    ]
    for member in members:  # all of them heading for the first hop before any arrives
        lockstep.coming(member, ROUTE)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    return groups


def test_the_steps_released_together_form_one_group_sent_once_by_the_last_to_hand_in():
    lockstep = Lockstep(max_wait_s=LONG)
    groups = arrive_all(lockstep, [1, 2, 3], 0)
    assert len(groups) == 3 and len({id(g) for g in groups.values()}) == 1
    group = groups[1]
    assert group.size == 3 and lockstep.groups == 1
    sent = []

    def send(steps):
        sent.append(list(steps))
        return [f"answer to {s}" for s in steps]

    answers = {}
    threads = [
        threading.Thread(target=lambda m=m: answers.__setitem__(m, group.exchange(m, f"step {m}", send)))
        for m in (3, 1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(sent) == 1 and sorted(sent[0]) == ["step 1", "step 2", "step 3"]  # one request for all three
    assert answers == {m: f"answer to step {m}" for m in (1, 2, 3)}


def test_a_member_that_withdraws_does_not_hold_the_others_back():
    lockstep = Lockstep(max_wait_s=LONG)
    group = arrive_all(lockstep, [1, 2], 0)[1]
    answer = {}
    waiting = threading.Thread(target=lambda: answer.setdefault(1, group.exchange(1, "one", lambda s: list(s))))
    waiting.start()
    time.sleep(0.2)
    assert not answer
    group.withdraw(2)  # e.g. a paid step, which goes alone
    waiting.join(5)
    assert answer == {1: "one"}


def test_a_failed_request_fails_every_member_of_its_group():
    lockstep = Lockstep(max_wait_s=LONG)
    group = arrive_all(lockstep, [1, 2], 0)[1]

    def send(steps):
        raise ConnectionError("the server went away")

    errors = []

    def member(m):
        try:
            group.exchange(m, m, send)
        except ConnectionError as exc:
            errors.append((m, str(exc)))

    threads = [threading.Thread(target=member, args=(m,)) for m in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(errors) == [(1, "the server went away"), (2, "the server went away")]


def test_a_group_whose_members_never_all_hand_in_times_out():
    lockstep = Lockstep(max_wait_s=LONG)
    group = arrive_all(lockstep, [1, 2], 0)[1]
    group.timeout = 0.2
    with pytest.raises(GroupTimeout):
        group.exchange(1, "one", lambda s: list(s))  # member 2 never comes: a bug, bounded all the same
