"""ServerRegistry.register and the views over registered servers."""

import pytest
from conftest import ONE, Status, balance, reverts


def test_register_records_the_server(registry, servers, params):
    s = servers[0]
    tx = registry.register("http://gpu-0:8080", 5, 10, {"from": s, "value": 2 * params.min_stake})

    assert tx.events["ServerRegistered"] == {
        "server": s,
        "endpoint": "http://gpu-0:8080",
        "firstLayer": 5,
        "numLayers": 10,
        "stake": 2 * params.min_stake,
    }
    assert tx.events["StatusChanged"] == {"server": s, "from": Status.NONE, "to": Status.ACTIVE, "epoch": 0}
    record = registry.getServer(s)
    assert record.dict() == {
        "endpoint": "http://gpu-0:8080",
        "firstLayer": 5,
        "numLayers": 10,
        "status": Status.ACTIVE,
        "registeredEpoch": 0,
        "activeSince": 0,
        "timesSlashed": 0,
        "unlockTime": 0,
        "leftEpoch": 0,
        "leftBefore": False,
        "dtype": 0,
        "weights": 0,
        "stake": 2 * params.min_stake,
        "unbonding": 0,
        "totalSlashed": 0,
        "weight": ONE,
    }
    facts = registry.scoringFacts(s, 0)  # registered at genesis: epoch 0 is served in full
    assert (facts["status"], facts["active"], facts["firstLayer"], facts["numLayers"]) == (Status.ACTIVE, True, 5, 10)
    assert tx.events["FactsScheduled"] == {
        "server": s,
        "fromEpoch": 0,
        "active": True,
        "firstLayer": 5,
        "numLayers": 10,
    }
    assert registry.isActive(s)
    assert registry.totalBonded() == 2 * params.min_stake
    assert balance(registry) == 2 * params.min_stake


def test_register_counts_coverage_and_max_span(registry, servers, protocol):
    protocol.register(servers[0], 0, 10)
    protocol.register(servers[1], 5, 20)
    coverage = list(registry.coverage())
    assert len(coverage) == 30
    assert coverage == [1] * 5 + [2] * 5 + [1] * 15 + [0] * 5
    assert registry.maxActiveSpan() == 20


def test_register_in_a_later_epoch_counts_from_the_next_one(registry, servers, clock, protocol):
    """Registered in the middle of epoch 3: paid from epoch 4, the first it serves in full. Its work in epoch 3 is
    scored (and slashable) with the span it registered, but not paid."""
    clock.to_epoch(3, offset=50)
    tx = protocol.register(servers[0])
    assert tx.events["StatusChanged"]["epoch"] == 4
    assert registry.getServer(servers[0])["registeredEpoch"] == 3
    assert registry.getServer(servers[0])["activeSince"] == 4
    facts = registry.scoringFacts(servers[0], 3)
    assert (facts["active"], facts["numLayers"]) == (False, 30)
    assert registry.scoringFacts(servers[0], 2)["numLayers"] == 0
    assert registry.scoringFacts(servers[0], 4)["active"]


def test_register_at_the_first_second_of_an_epoch_counts_from_it(registry, servers, clock, protocol):
    clock.to_epoch(3)
    protocol.register(servers[0])
    assert registry.getServer(servers[0])["activeSince"] == 3
    assert registry.scoringFacts(servers[0], 3)["active"]


def test_server_list_and_paging(registry, servers, protocol):
    for s in servers[:3]:
        protocol.register(s)
    assert registry.serverCount() == 3
    assert registry.serverList() == servers[:3]

    addrs, records = registry.getServers(1, 5)
    assert addrs == servers[1:3]
    assert [r["status"] for r in records] == [Status.ACTIVE, Status.ACTIVE]
    assert registry.getServers(0, 2)[0] == servers[:2]
    assert registry.getServers(3, 2) == ([], [])
    assert registry.getServers(10, 2) == ([], [])


def test_unknown_server_has_an_empty_record(registry, stranger):
    assert registry.getServer(stranger)["status"] == Status.NONE
    assert not registry.isActive(stranger)
    facts = registry.scoringFacts(stranger, 0)
    assert (facts["status"], facts["active"], facts["numLayers"], facts["weight"]) == (Status.NONE, False, 0, 0)
    assert registry.maxSpanOf(0) == 0
    assert registry.serverCount() == 0
    assert registry.maxActiveSpan() == 0
    assert list(registry.coverage()) == [0] * 30


def test_register_twice_reverts(servers, protocol):
    protocol.register(servers[0])
    with reverts("AlreadyRegistered", servers[0]):
        protocol.register(servers[0])


def test_register_below_min_stake_reverts(servers, protocol, params):
    with reverts("InsufficientStake", params.min_stake - 1, params.min_stake):
        protocol.register(servers[0], stake=params.min_stake - 1)
    protocol.register(servers[1], stake=params.min_stake)


@pytest.mark.parametrize("first, n", [(0, 0), (0, 31), (30, 1), (29, 2), (2**16, 1)])
def test_register_outside_the_model_reverts(servers, protocol, first, n):
    with reverts("InvalidSpan", first, n, 30):
        protocol.register(servers[0], first, n)


@pytest.mark.parametrize("first, n", [(29, 1), (0, 30)])
def test_register_spans_up_to_the_last_layer(registry, servers, protocol, first, n):
    protocol.register(servers[0], first, n)
    assert registry.coverage()[29] == 1


@pytest.mark.parametrize("endpoint", ["", "h" * 257])
def test_register_with_bad_endpoint_reverts(servers, protocol, endpoint):
    with reverts("InvalidEndpoint"):
        protocol.register(servers[0], endpoint=endpoint)


def test_register_accepts_the_longest_endpoint(registry, servers, protocol):
    protocol.register(servers[0], endpoint="h" * 256)
    assert registry.getServer(servers[0])["endpoint"] == "h" * 256
