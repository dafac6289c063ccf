"""WorkLedger: commitWork in its window, and the sampling seed drawn once in CommitScores."""

import pytest
from conftest import ZERO_BYTES32, Phase, reverts, root_of


@pytest.fixture
def server(servers, protocol):
    protocol.register(servers[0], 4, 12)
    return servers[0]


def test_commit_work_snapshots_the_span(ledger, registry, server, clock):
    t = clock.to_phase(0, Phase.COMMIT_WORK)
    root = root_of(server, 0)
    tx = ledger.commitWork(0, root, 250, {"from": server})
    assert tx.events["WorkCommitted"] == {
        "epoch": 0,
        "server": server,
        "root": root,
        "workUnits": 250,
        "firstLayer": 4,
        "numLayers": 12,
    }
    assert ledger.commitmentOf(0, server).dict() == {
        "root": root,
        "workUnits": 250,
        "firstLayer": 4,
        "numLayers": 12,
        "committedAt": t,
        "lost": False,
    }
    assert ledger.committedServers(0) == 1

    registry.updateServer("http://moved", 0, 30, {"from": server})
    assert ledger.commitmentOf(0, server)["numLayers"] == 12


def test_commit_work_window_boundaries(ledger, server, clock):
    """Open from the first second after the work period to the last second before CommitScores."""
    root = root_of(server, 0)
    clock.goto(clock.end(0, Phase.WORK) - 1)
    with reverts("WrongPhase", 0, Phase.COMMIT_WORK, Phase.WORK):
        ledger.commitWork(0, root, 1, {"from": server})
    clock.goto(clock.end(0, Phase.COMMIT_WORK) - 1)
    ledger.commitWork(0, root, 1, {"from": server})
    clock.goto(clock.end(0, Phase.COMMIT_WORK))
    with reverts("WrongPhase", 1, Phase.COMMIT_WORK, Phase.WORK):
        ledger.commitWork(1, root, 1, {"from": server})


def test_commit_work_after_the_window_reverts(ledger, server, clock):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    with reverts("WrongPhase", 0, Phase.COMMIT_WORK, Phase.COMMIT_SCORES):
        ledger.commitWork(0, root_of(server, 0), 1, {"from": server})
    with reverts("WrongPhase", 5, Phase.COMMIT_WORK, Phase.FUTURE):
        ledger.commitWork(5, root_of(server, 5), 1, {"from": server})


def test_commit_work_twice_reverts(ledger, server, clock):
    clock.to_phase(0, Phase.COMMIT_WORK)
    ledger.commitWork(0, root_of(server, 0), 1, {"from": server})
    with reverts("WorkAlreadyCommitted", 0, server):
        ledger.commitWork(0, root_of(server, 99), 2, {"from": server})


@pytest.mark.parametrize("empty", ["root", "units"])
def test_empty_commitment_reverts(ledger, server, clock, empty):
    clock.to_phase(0, Phase.COMMIT_WORK)
    root = ZERO_BYTES32 if empty == "root" else root_of(server, 0)
    units = 0 if empty == "units" else 1
    with reverts("EmptyCommitment"):
        ledger.commitWork(0, root, units, {"from": server})


def test_work_units_are_capped(ledger, server, clock):
    cap = ledger.MAX_WORK_UNITS()
    clock.to_phase(0, Phase.COMMIT_WORK)
    with reverts("TooManyWorkUnits", cap + 1, cap):
        ledger.commitWork(0, root_of(server, 0), cap + 1, {"from": server})
    ledger.commitWork(0, root_of(server, 0), cap, {"from": server})
    assert ledger.commitmentOf(0, server)["workUnits"] == cap


def test_unknown_and_deactivated_servers_are_not_eligible(ledger, registry, server, stranger, clock, gov_slasher):
    registry.slash(server, 0, {"from": gov_slasher})
    clock.to_phase(0, Phase.COMMIT_WORK)
    with reverts("ServerNotEligible", stranger):
        ledger.commitWork(0, root_of(stranger, 0), 1, {"from": stranger})
    with reverts("ServerNotEligible", server):
        ledger.commitWork(0, root_of(server, 0), 1, {"from": server})


def test_an_inactive_server_may_commit_the_work_it_served(ledger, registry, server, clock, params):
    registry.requestUnstake(params.min_stake, {"from": server})
    clock.to_phase(0, Phase.COMMIT_WORK)
    ledger.commitWork(0, root_of(server, 0), 3, {"from": server})
    assert ledger.commitmentOf(0, server)["workUnits"] == 3


def test_committed_servers_are_counted_per_epoch(ledger, servers, protocol):
    for s in servers[1:3]:
        protocol.register(s)
    protocol.commit_work(0, {servers[1]: 1, servers[2]: 2})
    protocol.commit_work(1, {servers[1]: 5})
    assert (ledger.committedServers(0), ledger.committedServers(1), ledger.committedServers(2)) == (2, 1, 0)
