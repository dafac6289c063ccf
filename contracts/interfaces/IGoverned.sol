// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IGoverned
/// @notice What every eFedLLM contract shares: a governor who sets bounded parameters and can pause.
/// @dev Roles come from OpenZeppelin AccessControl; pausing from Pausable (events `Paused`/`Unpaused`).
interface IGoverned {
    /// @notice A parameter was set to a new value. `name` is the parameter's name as bytes32 text.
    event ParameterSet(bytes32 indexed name, uint256 value);

    /// @notice A governor tried to set `name` outside of its bounds `[min, max]`.
    error ParameterOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);

    /// @notice Stops every state-changing entry point of this contract until `unpause`.
    function pause() external;

    /// @notice Lifts a pause.
    function unpause() external;
}
