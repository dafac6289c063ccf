// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IServerRegistry} from "../interfaces/IServerRegistry.sol";
import {IRewardPool} from "../interfaces/IRewardPool.sol";
import {IWorkLedger} from "../interfaces/IWorkLedger.sol";

/// @title ReentrancyAttacker
/// @notice Test aid: a server contract whose receive() re-enters withdraw() or claimRewards(). Tests assert that
/// the re-entry fails and the outer call reverts with TransferFailed, leaving every balance as it was.
contract ReentrancyAttacker {
    IServerRegistry public immutable registry;
    IRewardPool public immutable pool;
    uint8 public mode; // 0: none, 1: re-enter withdraw, 2: re-enter claimRewards
    uint256[] private _epochs;
    uint256 public reentries;

    constructor(IServerRegistry registry_, IRewardPool pool_) {
        registry = registry_;
        pool = pool_;
    }

    function register(string calldata endpoint, uint256 firstLayer, uint256 numLayers) external payable {
        registry.register{value: msg.value}(endpoint, firstLayer, numLayers);
    }

    function requestUnstake(uint256 amount) external {
        registry.requestUnstake(amount);
    }

    function commitWork(IWorkLedger ledger, uint256 epoch, bytes32 root, uint256 workUnits) external {
        ledger.commitWork(epoch, root, workUnits);
    }

    function attackWithdraw() external {
        mode = 1;
        registry.withdraw();
    }

    function attackClaim(uint256[] calldata epochs) external {
        mode = 2;
        _epochs = epochs;
        pool.claimRewards(epochs);
    }

    receive() external payable {
        if (mode == 1) {
            reentries += 1;
            registry.withdraw();
        } else if (mode == 2) {
            reentries += 1;
            pool.claimRewards(_epochs);
        }
    }
}
