"""The `reverts` helper itself: every other test relies on it telling custom errors apart."""

import pytest
from conftest import decode_error, error_selector, reverts
from eth_abi import encode as abi_encode

Failed = pytest.fail.Exception


def test_selectors_are_computed_from_the_abis():
    # Well-known OpenZeppelin 5 selectors, and one of ours.
    assert error_selector("AccessControlUnauthorizedAccount") == "0xe2517d3f"
    assert error_selector("EnforcedPause") == "0xd93c0665"
    assert error_selector("ReentrancyGuardReentrantCall") == "0x3ee5aeb5"
    data = error_selector("InsufficientStake") + abi_encode(["uint256", "uint256"], [1, 2]).hex()
    assert decode_error(data) == ("InsufficientStake", (1, 2))


def test_matching_name_and_args_pass(registry, servers, params):
    with reverts("InsufficientStake", 1, params.min_stake) as seen:
        registry.register("http://s", 0, 30, {"from": servers[0], "value": 1})
    assert seen.name == "InsufficientStake"
    assert seen.args == (1, params.min_stake)
    assert decode_error(seen.data) == ("InsufficientStake", (1, params.min_stake))


def test_a_different_error_fails_the_test(registry, servers):
    with pytest.raises(Failed, match="expected revert NothingToWithdraw, got InsufficientStake"):
        with reverts("NothingToWithdraw"):
            registry.register("http://s", 0, 30, {"from": servers[0], "value": 1})


def test_different_args_fail_the_test(registry, servers, params):
    with pytest.raises(Failed, match="expected InsufficientStake"):
        with reverts("InsufficientStake", 2, params.min_stake):
            registry.register("http://s", 0, 30, {"from": servers[0], "value": 1})


def test_a_call_that_succeeds_fails_the_test(registry, servers, params):
    with pytest.raises(Failed, match="succeeded"):
        with reverts("InsufficientStake"):
            registry.register("http://s", 0, 30, {"from": servers[0], "value": params.min_stake})


def test_an_unknown_error_name_is_rejected_at_once():
    with pytest.raises(ValueError, match="no custom error named"):
        with reverts("InsuficientStake"):
            pass


def test_reverts_of_calls_are_matched_too(registry, servers, stranger, protocol):
    """An eth_call has no transaction to trace: the revert data comes from the RPC error itself."""
    protocol.register(servers[0])
    with reverts("AccessControlUnauthorizedAccount", stranger, registry.SLASHER_ROLE()):
        registry.slash.call(servers[0], 0, {"from": stranger})
    with pytest.raises(Failed, match="got AccessControlUnauthorizedAccount"):
        with reverts("NotRegistered"):
            registry.slash.call(servers[0], 0, {"from": stranger})
