// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title Project funds locked per project and released milestone by milestone.
/// @notice Funders lock an ERC-20 in a project up to the sum of its milestones. Only the
/// project's approver releases a milestone (in order) to the project's recipient, and only the
/// approver cancels. After a cancel each funder takes back their pro-rata part of what was
/// not yet released.
contract MilestoneEscrow is ReentrancyGuard {
    using SafeERC20 for IERC20;

    enum Status {
        None,
        Active,
        Completed,
        Cancelled
    }

    struct Project {
        IERC20 token;
        address approver;
        address recipient;
        Status status;
        uint256 goal;
        uint256 funded;
        uint256 released;
        uint256 nextMilestone;
        uint256 remainingAtCancel;
    }

    Project[] private _projects;
    mapping(uint256 projectId => uint256[]) private _milestones;
    mapping(uint256 projectId => mapping(address funder => uint256)) public contributionOf;

    error UnknownProject(uint256 projectId);
    error NoMilestones();
    error ZeroAmount();
    error ZeroAddress();
    error NotApprover(uint256 projectId, address caller);
    error ProjectNotActive(uint256 projectId);
    error ProjectNotCancelled(uint256 projectId);
    error FundingExceedsGoal(uint256 projectId, uint256 goal, uint256 fundedAfter);
    error WrongMilestone(uint256 projectId, uint256 expected, uint256 given);
    error InsufficientFunds(uint256 projectId, uint256 available, uint256 required);
    error NothingToRefund(uint256 projectId, address funder);

    event ProjectCreated(
        uint256 indexed projectId, address indexed token, address indexed approver, address recipient, uint256 goal
    );
    event ProjectFunded(uint256 indexed projectId, address indexed funder, uint256 amount);
    event MilestoneReleased(uint256 indexed projectId, uint256 indexed milestone, address recipient, uint256 amount);
    event ProjectCompleted(uint256 indexed projectId);
    event ProjectCancelled(uint256 indexed projectId, uint256 remaining);
    event Refunded(uint256 indexed projectId, address indexed funder, uint256 amount);

    function createProject(IERC20 token, address approver, address recipient, uint256[] calldata milestoneAmounts)
        external
        returns (uint256 projectId)
    {
        if (milestoneAmounts.length == 0) revert NoMilestones();
        if (approver == address(0) || recipient == address(0) || address(token) == address(0)) revert ZeroAddress();
        uint256 goal;
        for (uint256 i = 0; i < milestoneAmounts.length; i++) {
            if (milestoneAmounts[i] == 0) revert ZeroAmount();
            goal += milestoneAmounts[i];
        }
        projectId = _projects.length;
        _projects.push(
            Project({
                token: token,
                approver: approver,
                recipient: recipient,
                status: Status.Active,
                goal: goal,
                funded: 0,
                released: 0,
                nextMilestone: 0,
                remainingAtCancel: 0
            })
        );
        _milestones[projectId] = milestoneAmounts;
        emit ProjectCreated(projectId, address(token), approver, recipient, goal);
    }

    function fund(uint256 projectId, uint256 amount) external nonReentrant {
        Project storage p = _project(projectId);
        if (p.status != Status.Active) revert ProjectNotActive(projectId);
        if (amount == 0) revert ZeroAmount();
        uint256 fundedAfter = p.funded + amount;
        if (fundedAfter > p.goal) revert FundingExceedsGoal(projectId, p.goal, fundedAfter);
        p.funded = fundedAfter;
        contributionOf[projectId][msg.sender] += amount;
        p.token.safeTransferFrom(msg.sender, address(this), amount);
        emit ProjectFunded(projectId, msg.sender, amount);
    }

    /// @notice Releases milestone `milestone` (the next one in order) to the recipient.
    function releaseMilestone(uint256 projectId, uint256 milestone) external nonReentrant {
        Project storage p = _project(projectId);
        if (msg.sender != p.approver) revert NotApprover(projectId, msg.sender);
        if (p.status != Status.Active) revert ProjectNotActive(projectId);
        if (milestone != p.nextMilestone) revert WrongMilestone(projectId, p.nextMilestone, milestone);
        uint256 amount = _milestones[projectId][milestone];
        uint256 available = p.funded - p.released;
        if (available < amount) revert InsufficientFunds(projectId, available, amount);
        p.released += amount;
        p.nextMilestone = milestone + 1;
        p.token.safeTransfer(p.recipient, amount);
        emit MilestoneReleased(projectId, milestone, p.recipient, amount);
        if (p.nextMilestone == _milestones[projectId].length) {
            p.status = Status.Completed;
            emit ProjectCompleted(projectId);
        }
    }

    function cancel(uint256 projectId) external {
        Project storage p = _project(projectId);
        if (msg.sender != p.approver) revert NotApprover(projectId, msg.sender);
        if (p.status != Status.Active) revert ProjectNotActive(projectId);
        p.status = Status.Cancelled;
        p.remainingAtCancel = p.funded - p.released;
        emit ProjectCancelled(projectId, p.remainingAtCancel);
    }

    /// @notice After a cancel, pays the caller contribution * remainingAtCancel / funded.
    function refund(uint256 projectId) external nonReentrant returns (uint256 amount) {
        Project storage p = _project(projectId);
        if (p.status != Status.Cancelled) revert ProjectNotCancelled(projectId);
        uint256 contribution = contributionOf[projectId][msg.sender];
        if (contribution == 0) revert NothingToRefund(projectId, msg.sender);
        contributionOf[projectId][msg.sender] = 0;
        amount = contribution * p.remainingAtCancel / p.funded;
        p.token.safeTransfer(msg.sender, amount);
        emit Refunded(projectId, msg.sender, amount);
    }

    function project(uint256 projectId) external view returns (Project memory) {
        return _project(projectId);
    }

    function milestones(uint256 projectId) external view returns (uint256[] memory) {
        _project(projectId);
        return _milestones[projectId];
    }

    function projectCount() external view returns (uint256) {
        return _projects.length;
    }

    function _project(uint256 projectId) private view returns (Project storage) {
        if (projectId >= _projects.length) revert UnknownProject(projectId);
        return _projects[projectId];
    }
}
