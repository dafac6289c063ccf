// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Bonds
/// @notice The slashing arithmetic shared by servers' stakes (ServerRegistry) and verifiers' (VerifierStakes), so
/// that both take the same share, from the same places.
library Bonds {
    uint256 internal constant ONE = 1e18;

    /// @dev `fraction` (18 decimals, at most 1e18) of bonded plus unbonding stake, taken from the bonded part first:
    /// stake on its way out stays slashable, but is taken only once the bond is used up.
    function slashSplit(uint256 bonded, uint256 unbonding, uint256 fraction)
        internal
        pure
        returns (uint256 amount, uint256 fromBonded, uint256 fromUnbonding)
    {
        amount = (bonded + unbonding) * fraction / ONE;
        fromBonded = amount < bonded ? amount : bonded;
        fromUnbonding = amount - fromBonded;
    }
}
