"""Route planning: cover every layer at the lowest estimated cost, prefer fast and trusted servers."""

import pytest

from efedllm.client.routing import NoRouteError, Peer, plan_route
from efedllm.errors import EfedError
from efedllm.layers import compact_layers, parse_span


def spans(route):
    return [(h.peer.endpoint, h.start, h.end) for h in route]


def test_chain_of_disjoint_spans():
    peers = [Peer("a", 0, 10), Peer("b", 10, 20), Peer("c", 20, 30)]
    assert spans(plan_route(peers, 0, 30)) == [("a", 0, 10), ("b", 10, 20), ("c", 20, 30)]


def test_prefers_the_faster_of_two_servers():
    peers = [
        Peer("a", 0, 10),
        Peer("slow", 10, 20, decode_tokens_per_s=5),
        Peer("fast", 10, 20, decode_tokens_per_s=50),
        Peer("c", 20, 30),
    ]
    assert [h.peer.endpoint for h in plan_route(peers, 0, 30)] == ["a", "fast", "c"]


def test_prefers_a_trusted_server_at_equal_speed():
    peers = [Peer("doubtful", 0, 30, trust=0.5), Peer("trusted", 0, 30, trust=1.0)]
    assert [h.peer.endpoint for h in plan_route(peers, 0, 30)] == ["trusted"]


def test_overlapping_spans_are_entered_midway():
    peers = [Peer("a", 0, 12, decode_tokens_per_s=100), Peer("b", 8, 30, decode_tokens_per_s=100)]
    route = plan_route(peers, 0, 30)
    assert spans(route) in ([("a", 0, 12), ("b", 12, 30)], [("a", 0, 8), ("b", 8, 30)])


def test_sub_range_for_failover():
    peers = [Peer("a", 0, 30), Peer("b", 10, 20)]
    assert all(10 <= h.start < h.end <= 20 for h in plan_route(peers, 10, 20))


def test_missing_layers_are_named():
    with pytest.raises(NoRouteError, match="layers 5-9, 25-29") as info:
        plan_route([Peer("a", 0, 5), Peer("b", 10, 25)], 0, 30)
    assert info.value.missing == [*range(5, 10), *range(25, 30)]


def test_layer_text():
    assert parse_span("10:20") == (10, 10)
    assert parse_span("0:30", 30) == (0, 30)
    assert compact_layers([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8"
    for bad in ("10", "a:b", "5:5", "-1:3"):
        with pytest.raises(EfedError):
            parse_span(bad)
    with pytest.raises(EfedError, match="out of range of a 30-layer model"):
        parse_span("20:31", 30)


def test_measured_speed_overrides_the_claim():
    """A server that claims 10x the speed of another but answered slower is routed around once measured."""
    from efedllm.client.latency import MIN_STEPS, Latencies

    peers = [Peer("claims-fast", 0, 30, decode_tokens_per_s=500), Peer("honest", 0, 30, decode_tokens_per_s=50)]
    seen = Latencies()
    assert [h.peer.endpoint for h in plan_route(peers, 0, 30, measured=seen.seconds_per_layer())] == ["claims-fast"]
    for _ in range(MIN_STEPS):
        seen.observe("claims-fast", seconds=0.300, layers=30)
        seen.observe("honest", seconds=0.030, layers=30)
    assert seen.seconds_per_layer() == pytest.approx({"claims-fast": 0.01, "honest": 0.001})
    assert [h.peer.endpoint for h in plan_route(peers, 0, 30, measured=seen.seconds_per_layer())] == ["honest"]
    for _ in range(20):  # it got faster: the moving average follows
        seen.observe("claims-fast", seconds=0.003, layers=30)
    assert [h.peer.endpoint for h in plan_route(peers, 0, 30, measured=seen.seconds_per_layer())] == ["claims-fast"]
    seen.forget("claims-fast")
    assert list(seen.seconds_per_layer()) == ["honest"]
