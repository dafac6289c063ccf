// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IGoverned} from "../interfaces/IGoverned.sol";
import {IEpochSchedule} from "../interfaces/IEpochSchedule.sol";

/// @title Governed
/// @notice Base of every stateful eFedLLM contract: the governor role, pause, bounded parameters, and the shared
/// epoch clock. Keeping these in one place makes every contract answer governance the same way.
abstract contract Governed is IGoverned, AccessControl, Pausable {
    /// @notice May set parameters and pause. The deployer's governor also holds DEFAULT_ADMIN_ROLE and so
    /// grants and revokes every role (verifiers included).
    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");

    /// @notice The protocol clock.
    IEpochSchedule public immutable schedule;

    constructor(address governor, IEpochSchedule schedule_) {
        schedule = schedule_;
        _grantRole(DEFAULT_ADMIN_ROLE, governor);
        _grantRole(GOVERNOR_ROLE, governor);
    }

    /// @inheritdoc IGoverned
    function pause() external onlyRole(GOVERNOR_ROLE) {
        _pause();
    }

    /// @inheritdoc IGoverned
    function unpause() external onlyRole(GOVERNOR_ROLE) {
        _unpause();
    }

    /// @dev Reverts unless `value` lies in `[min, max]`, then announces it. Callers store the value.
    function _checkBounds(bytes32 name, uint256 value, uint256 min, uint256 max) internal {
        if (value < min || value > max) revert ParameterOutOfBounds(name, value, min, max);
        emit ParameterSet(name, value);
    }

    /// @dev Reverts unless `epoch` is in `expected` phase now.
    function _requirePhase(uint256 epoch, IEpochSchedule.Phase expected) internal view {
        IEpochSchedule.Phase actual = schedule.phase(epoch);
        if (actual != expected) revert IEpochSchedule.WrongPhase(epoch, expected, actual);
    }

    /// @dev The current epoch, read from the shared clock.
    function _currentEpoch() internal view returns (uint256) {
        return schedule.currentEpoch();
    }
}
