"""ServerRegistry.declareServing: the precision and weight format a server declares, fixed per epoch (issue 15).

Verifiers check an epoch's work against ``servingOf(server, epoch)``, so a declaration must never reach back into
an epoch whose work period has begun, except the server's registration epoch (scored and slashable, not paid),
where it holds from that epoch so that a server can register and declare before it serves.
"""

import pytest
from brownie import chain
from brownie.exceptions import VirtualMachineError
from conftest import Phase, reverts

from efedllm.chain.enums import ComputeDtype, WeightFormat

FLOAT32_FULL = (ComputeDtype.FLOAT32, WeightFormat.FULL)
BF16_FULL = (int(ComputeDtype.BFLOAT16), int(WeightFormat.FULL))
F16_INT8 = (int(ComputeDtype.FLOAT16), int(WeightFormat.INT8))


def serving(registry, server, epoch) -> tuple[int, int]:
    value = registry.servingOf(server, epoch)
    return (value["dtype"], value["weights"])


def test_a_server_that_never_declared_serves_float32_full_weights(registry, servers, protocol):
    protocol.register(servers[0])
    assert serving(registry, servers[0], 0) == FLOAT32_FULL
    assert serving(registry, servers[0], 10**6) == FLOAT32_FULL
    record = registry.getServer(servers[0])
    assert (record["dtype"], record["weights"]) == FLOAT32_FULL


def test_declared_in_the_registration_epoch_holds_from_it(registry, servers, clock, protocol):
    clock.to_epoch(3, offset=50)
    protocol.register(servers[0])
    tx = registry.declareServing(BF16_FULL, {"from": servers[0]})
    assert tx.events["ServingDeclared"] == {
        "server": servers[0],
        "fromEpoch": 3,
        "dtype": ComputeDtype.BFLOAT16,
        "weights": WeightFormat.FULL,
    }
    assert serving(registry, servers[0], 2) == FLOAT32_FULL
    assert serving(registry, servers[0], 3) == BF16_FULL
    assert serving(registry, servers[0], 4) == BF16_FULL
    # a second declaration in the same epoch replaces the first
    registry.declareServing(F16_INT8, {"from": servers[0]})
    assert serving(registry, servers[0], 3) == F16_INT8


def test_a_later_change_holds_from_the_next_full_epoch_and_never_reaches_back(registry, servers, clock, protocol):
    clock.to_epoch(3, offset=50)
    protocol.register(servers[0])
    registry.declareServing(BF16_FULL, {"from": servers[0]})
    clock.to_epoch(4, offset=50)
    tx = registry.declareServing(F16_INT8, {"from": servers[0]})
    assert tx.events["ServingDeclared"]["fromEpoch"] == 5
    # the live record says what it serves now; epoch 4's work is still checked as bfloat16
    record = registry.getServer(servers[0])
    assert (record["dtype"], record["weights"]) == F16_INT8
    assert serving(registry, servers[0], 4) == BF16_FULL
    assert serving(registry, servers[0], 5) == F16_INT8
    clock.to_epoch(7, offset=10)
    registry.declareServing(BF16_FULL, {"from": servers[0]})
    assert [serving(registry, servers[0], e) for e in (3, 4, 5, 6, 7, 8)] == [BF16_FULL, BF16_FULL] + [F16_INT8] * 3 + [
        BF16_FULL
    ]


def test_declared_at_the_first_second_of_an_epoch_holds_from_it(registry, servers, clock, protocol):
    protocol.register(servers[0])
    clock.set_next(clock.start(2, Phase.WORK))
    tx = registry.declareServing(BF16_FULL, {"from": servers[0]})
    assert tx.events["ServingDeclared"]["fromEpoch"] == 2
    assert serving(registry, servers[0], 1) == FLOAT32_FULL
    assert serving(registry, servers[0], 2) == BF16_FULL


def test_only_registered_live_servers_declare(registry, servers, stranger, gov, protocol):
    with reverts("NotRegistered", stranger):
        registry.declareServing(BF16_FULL, {"from": stranger})
    protocol.register(servers[0])
    registry.pause({"from": gov})
    with reverts("EnforcedPause"):
        registry.declareServing(BF16_FULL, {"from": servers[0]})
    registry.unpause({"from": gov})
    chain.mine()
    registry.declareServing(BF16_FULL, {"from": servers[0]})


def test_an_unknown_dtype_reverts(registry, servers, protocol):
    """The ABI refuses an enum value the contract does not define (no silent float32)."""
    protocol.register(servers[0])
    calldata = registry.declareServing.encode_input(BF16_FULL)
    assert calldata[10:] == "0" * 63 + "1" + "0" * 64
    bad = calldata[:10] + "0" * 63 + "7" + "0" * 64
    before = serving(registry, servers[0], 1)
    with pytest.raises(VirtualMachineError):
        servers[0].transfer(registry, data=bad, gas_limit=200_000, allow_revert=True)
    assert serving(registry, servers[0], 1) == before
