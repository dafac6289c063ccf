// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title LayerCounts
/// @notice Sixteen 16-bit counters per storage word, indexed from 0. Used for "active servers per layer" and
/// "active servers per span length", which change on every activation and must stay cheap to update for a whole
/// span (a 30-layer span touches 2 words rather than 30 slots).
library LayerCounts {
    struct Counts {
        mapping(uint256 => uint256) words;
    }

    uint256 private constant PER_WORD = 16;
    uint256 private constant MASK = 0xffff;
    /// @notice What `step` returns when no counter overflowed.
    uint256 internal constant NONE = type(uint256).max;

    /// @dev Adds 1 to each counter in [first, first + count) when `up`, else subtracts 1. Returns the index of
    /// the first counter that would pass 65535 (and changes nothing from it on), or NONE; the caller reverts.
    /// Callers never step a counter below 0.
    function step(Counts storage self, uint256 first, uint256 count, bool up) internal returns (uint256 overflowAt) {
        uint256 end = first + count;
        uint256 i = first;
        while (i < end) {
            uint256 wordIndex = i / PER_WORD;
            uint256 word = self.words[wordIndex];
            uint256 wordEnd = (wordIndex + 1) * PER_WORD;
            if (wordEnd > end) wordEnd = end;
            for (; i < wordEnd; ++i) {
                uint256 shift = (i % PER_WORD) * 16;
                uint256 value = (word >> shift) & MASK;
                if (up && value == MASK) return i;
                value = up ? value + 1 : value - 1;
                word = (word & ~(MASK << shift)) | (value << shift);
            }
            self.words[wordIndex] = word;
        }
        return NONE;
    }

    function get(Counts storage self, uint256 index) internal view returns (uint256) {
        return (self.words[index / PER_WORD] >> ((index % PER_WORD) * 16)) & MASK;
    }
}
