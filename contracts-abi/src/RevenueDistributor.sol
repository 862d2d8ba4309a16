// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title Periodic revenue distributions to share holders, claimed by Merkle proof.
/// @notice As Uniswap's merkle-distributor: leaf = keccak256(abi.encodePacked(index, account,
/// amount)), pairs hashed sorted (OpenZeppelin MerkleProof), one claimed bit per index. Each
/// distribution is funded when it is created; after its expiry claims stop and the owner may
/// sweep what is left.
contract RevenueDistributor is Ownable {
    using SafeERC20 for IERC20;

    struct Distribution {
        IERC20 token;
        bytes32 merkleRoot;
        uint256 total;
        uint256 claimed;
        uint64 expiresAt;
        bool swept;
    }

    Distribution[] private _distributions;
    mapping(uint256 distributionId => mapping(uint256 word => uint256 bits)) private _claimedBitmap;

    error UnknownDistribution(uint256 distributionId);
    error AlreadyClaimed(uint256 distributionId, uint256 index);
    error InvalidProof();
    error DistributionExpired(uint256 distributionId);
    error DistributionNotExpired(uint256 distributionId, uint64 expiresAt);
    error AlreadySwept(uint256 distributionId);
    error ExpiryInPast();
    error ZeroAmount();
    error ClaimExceedsTotal(uint256 distributionId, uint256 total, uint256 claimedAfter);

    event DistributionCreated(
        uint256 indexed distributionId, address indexed token, bytes32 merkleRoot, uint256 total, uint64 expiresAt
    );
    event Claimed(uint256 indexed distributionId, uint256 index, address indexed account, uint256 amount);
    event Swept(uint256 indexed distributionId, address indexed to, uint256 amount);

    constructor(address initialOwner) Ownable(initialOwner) {}

    /// @notice Pulls `total` of `token` from the owner and publishes `merkleRoot` for claims.
    function createDistribution(IERC20 token, bytes32 merkleRoot, uint256 total, uint64 expiresAt)
        external
        onlyOwner
        returns (uint256 distributionId)
    {
        if (total == 0) revert ZeroAmount();
        if (expiresAt <= block.timestamp) revert ExpiryInPast();
        distributionId = _distributions.length;
        _distributions.push(
            Distribution({
                token: token, merkleRoot: merkleRoot, total: total, claimed: 0, expiresAt: expiresAt, swept: false
            })
        );
        token.safeTransferFrom(msg.sender, address(this), total);
        emit DistributionCreated(distributionId, address(token), merkleRoot, total, expiresAt);
    }

    function claim(uint256 distributionId, uint256 index, address account, uint256 amount, bytes32[] calldata proof)
        external
    {
        Distribution storage d = _distribution(distributionId);
        if (block.timestamp >= d.expiresAt) revert DistributionExpired(distributionId);
        if (isClaimed(distributionId, index)) revert AlreadyClaimed(distributionId, index);
        bytes32 leaf = keccak256(abi.encodePacked(index, account, amount));
        if (!MerkleProof.verifyCalldata(proof, d.merkleRoot, leaf)) revert InvalidProof();
        // A tree whose amounts add up to more than was funded must not reach into the tokens
        // of other distributions held by this contract.
        uint256 claimedAfter = d.claimed + amount;
        if (claimedAfter > d.total) revert ClaimExceedsTotal(distributionId, d.total, claimedAfter);
        _claimedBitmap[distributionId][index / 256] |= 1 << (index % 256);
        d.claimed = claimedAfter;
        d.token.safeTransfer(account, amount);
        emit Claimed(distributionId, index, account, amount);
    }

    /// @notice After expiry, sends the unclaimed rest of a distribution to `to`.
    function sweep(uint256 distributionId, address to) external onlyOwner {
        Distribution storage d = _distribution(distributionId);
        if (block.timestamp < d.expiresAt) revert DistributionNotExpired(distributionId, d.expiresAt);
        if (d.swept) revert AlreadySwept(distributionId);
        d.swept = true;
        uint256 rest = d.total - d.claimed;
        d.token.safeTransfer(to, rest);
        emit Swept(distributionId, to, rest);
    }

    function isClaimed(uint256 distributionId, uint256 index) public view returns (bool) {
        return _claimedBitmap[distributionId][index / 256] & (1 << (index % 256)) != 0;
    }

    function distribution(uint256 distributionId) external view returns (Distribution memory) {
        return _distribution(distributionId);
    }

    function distributionCount() external view returns (uint256) {
        return _distributions.length;
    }

    function _distribution(uint256 distributionId) private view returns (Distribution storage) {
        if (distributionId >= _distributions.length) revert UnknownDistribution(distributionId);
        return _distributions[distributionId];
    }
}
