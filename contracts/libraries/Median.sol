// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Median
/// @notice Median of a short list (one value per verifier): insertion sort in memory.
library Median {
    /// @dev For an even count, the mean of the two middle values. Reverts on an empty list.
    function compute(uint64[] memory values) internal pure returns (uint256) {
        uint256 n = values.length;
        for (uint256 i = 1; i < n; ++i) {
            uint64 v = values[i];
            uint256 j = i;
            while (j > 0 && values[j - 1] > v) {
                values[j] = values[j - 1];
                --j;
            }
            values[j] = v;
        }
        uint256 mid = n / 2;
        return n % 2 == 1 ? values[mid] : (uint256(values[mid - 1]) + values[mid]) / 2;
    }
}
