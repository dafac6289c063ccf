"""ServerRegistry.updateServer: moving to another endpoint or span."""

import pytest
from conftest import Status, reverts


def test_update_moves_span_and_endpoint(registry, servers, protocol):
    s = servers[0]
    protocol.register(s, 0, 10)
    tx = registry.updateServer("http://moved:9000", 10, 20, {"from": s})
    assert tx.events["ServerUpdated"] == {
        "server": s,
        "endpoint": "http://moved:9000",
        "firstLayer": 10,
        "numLayers": 20,
    }
    record = registry.getServer(s)
    assert (record["endpoint"], record["firstLayer"], record["numLayers"]) == ("http://moved:9000", 10, 20)
    assert record["status"] == Status.ACTIVE
    assert list(registry.coverage()) == [0] * 10 + [1] * 20
    assert registry.maxActiveSpan() == 20


def test_update_can_lower_max_span(registry, servers, protocol):
    protocol.register(servers[0], 0, 30)
    protocol.register(servers[1], 0, 12)
    registry.updateServer("http://a", 0, 5, {"from": servers[0]})
    assert registry.maxActiveSpan() == 12
    assert list(registry.coverage()) == [2] * 5 + [1] * 7 + [0] * 18


def test_update_of_an_inactive_server_does_not_count_it(registry, servers, protocol):
    s = servers[0]
    protocol.register(s, 0, 10)
    registry.requestUnstake(1, {"from": s})
    registry.updateServer("http://a", 20, 10, {"from": s})
    assert list(registry.coverage()) == [0] * 30
    assert registry.maxActiveSpan() == 0
    registry.addStake({"from": s, "value": 1})
    assert list(registry.coverage()) == [0] * 20 + [1] * 10


def test_update_reverts_for_unknown_servers(registry, stranger):
    with reverts("NotRegistered", stranger):
        registry.updateServer("http://a", 0, 30, {"from": stranger})


@pytest.mark.parametrize("first, n", [(0, 0), (25, 6)])
def test_update_to_an_invalid_span_reverts(registry, servers, protocol, first, n):
    protocol.register(servers[0])
    with reverts("InvalidSpan", first, n, 30):
        registry.updateServer("http://a", first, n, {"from": servers[0]})


@pytest.mark.parametrize("endpoint", ["", "x" * 257])
def test_update_to_an_invalid_endpoint_reverts(registry, servers, protocol, endpoint):
    protocol.register(servers[0])
    with reverts("InvalidEndpoint"):
        registry.updateServer(endpoint, 0, 30, {"from": servers[0]})
