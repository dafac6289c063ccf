// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Median
/// @notice Median of a short list of packed reveals (one per verifier): insertion sort in memory.
library Median {
    /// @notice Bits below the value in a packed reveal (`value << SHIFT | verifier index`).
    uint256 internal constant SHIFT = 8;

    /// @dev Sorts `packed` in place (by value, then by verifier index) and returns the median value; for an even
    /// count, the mean of the two middle values. Sorting packed entries keeps each value with its verifier, so the
    /// caller can find the reveals far from the median at the two ends. Reverts on an empty list.
    function compute(uint72[] memory packed) internal pure returns (uint256) {
        uint256 n = packed.length;
        for (uint256 i = 1; i < n; ++i) {
            uint72 v = packed[i];
            uint256 j = i;
            while (j > 0 && packed[j - 1] > v) {
                packed[j] = packed[j - 1];
                --j;
            }
            packed[j] = v;
        }
        uint256 mid = n / 2;
        return n % 2 == 1 ? packed[mid] >> SHIFT : ((packed[mid - 1] >> SHIFT) + (packed[mid] >> SHIFT)) / 2;
    }
}
