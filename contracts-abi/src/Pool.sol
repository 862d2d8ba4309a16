// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title Constant-product pool of an artist coin (base) against a quote token.
/// @notice Uniswap V2 arithmetic: LP shares are this contract's ERC-20; a swap pays a 0.3% fee
/// that stays in the pool, so reserveBase * reserveQuote never decreases on a swap. The first
/// MINIMUM_LIQUIDITY shares are locked forever so the share price cannot be inflated from zero.
/// Tokens that take a fee on transfer are not supported.
contract Pool is ERC20, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint256 public constant MINIMUM_LIQUIDITY = 1000;
    uint256 public constant FEE_BPS = 30;
    address private constant LOCKED_SHARES_HOLDER = 0x000000000000000000000000000000000000dEaD;

    IERC20 public immutable base;
    IERC20 public immutable quote;
    uint256 public reserveBase;
    uint256 public reserveQuote;

    error ZeroAmount();
    error UnknownToken(address token);
    error InsufficientLiquidity();
    error InsufficientShares(uint256 shares, uint256 minShares);
    error SlippageExceeded(uint256 amountOut, uint256 minAmountOut);
    error InvariantViolated(uint256 kBefore, uint256 kAfter);
    error IdenticalTokens();

    event LiquidityAdded(address indexed provider, uint256 amountBase, uint256 amountQuote, uint256 shares);
    event LiquidityRemoved(address indexed provider, uint256 amountBase, uint256 amountQuote, uint256 shares);
    event Swapped(
        address indexed trader, address indexed tokenIn, uint256 amountIn, uint256 amountOut, address indexed to
    );

    constructor(IERC20 base_, IERC20 quote_, string memory name_, string memory symbol_) ERC20(name_, symbol_) {
        if (address(base_) == address(quote_)) revert IdenticalTokens();
        base = base_;
        quote = quote_;
    }

    /// @notice Adds at most the desired amounts at the current price (the first deposit sets
    /// the price) and mints LP shares; reverts if fewer than `minShares` would be minted.
    function addLiquidity(uint256 baseDesired, uint256 quoteDesired, uint256 minShares)
        external
        nonReentrant
        returns (uint256 amountBase, uint256 amountQuote, uint256 shares)
    {
        if (baseDesired == 0 || quoteDesired == 0) revert ZeroAmount();
        uint256 supply = totalSupply();
        if (supply == 0) {
            (amountBase, amountQuote) = (baseDesired, quoteDesired);
            shares = Math.sqrt(amountBase * amountQuote);
            if (shares <= MINIMUM_LIQUIDITY) revert InsufficientLiquidity();
            shares -= MINIMUM_LIQUIDITY;
            _mint(LOCKED_SHARES_HOLDER, MINIMUM_LIQUIDITY);
        } else {
            uint256 quoteOptimal = baseDesired * reserveQuote / reserveBase;
            if (quoteOptimal <= quoteDesired) {
                (amountBase, amountQuote) = (baseDesired, quoteOptimal);
            } else {
                (amountBase, amountQuote) = (quoteDesired * reserveBase / reserveQuote, quoteDesired);
            }
            shares = Math.min(amountBase * supply / reserveBase, amountQuote * supply / reserveQuote);
        }
        if (shares == 0 || shares < minShares) revert InsufficientShares(shares, minShares);
        base.safeTransferFrom(msg.sender, address(this), amountBase);
        quote.safeTransferFrom(msg.sender, address(this), amountQuote);
        reserveBase += amountBase;
        reserveQuote += amountQuote;
        _mint(msg.sender, shares);
        emit LiquidityAdded(msg.sender, amountBase, amountQuote, shares);
    }

    /// @notice Burns `shares` for their pro-rata part of both reserves.
    function removeLiquidity(uint256 shares, uint256 minBase, uint256 minQuote)
        external
        nonReentrant
        returns (uint256 amountBase, uint256 amountQuote)
    {
        if (shares == 0) revert ZeroAmount();
        uint256 supply = totalSupply();
        amountBase = shares * reserveBase / supply;
        amountQuote = shares * reserveQuote / supply;
        if (amountBase < minBase) revert SlippageExceeded(amountBase, minBase);
        if (amountQuote < minQuote) revert SlippageExceeded(amountQuote, minQuote);
        _burn(msg.sender, shares);
        reserveBase -= amountBase;
        reserveQuote -= amountQuote;
        base.safeTransfer(msg.sender, amountBase);
        quote.safeTransfer(msg.sender, amountQuote);
        emit LiquidityRemoved(msg.sender, amountBase, amountQuote, shares);
    }

    /// @notice Sells `amountIn` of `tokenIn` (base or quote) for the other token, sent to `to`;
    /// reverts if less than `minAmountOut` would come out.
    function swap(address tokenIn, uint256 amountIn, uint256 minAmountOut, address to)
        external
        nonReentrant
        returns (uint256 amountOut)
    {
        if (amountIn == 0) revert ZeroAmount();
        bool baseIn = tokenIn == address(base);
        if (!baseIn && tokenIn != address(quote)) revert UnknownToken(tokenIn);
        (uint256 reserveIn, uint256 reserveOut) = baseIn ? (reserveBase, reserveQuote) : (reserveQuote, reserveBase);
        amountOut = getAmountOut(amountIn, reserveIn, reserveOut);
        if (amountOut == 0) revert InsufficientLiquidity();
        if (amountOut < minAmountOut) revert SlippageExceeded(amountOut, minAmountOut);

        uint256 kBefore = reserveIn * reserveOut;
        uint256 kAfter = (reserveIn + amountIn) * (reserveOut - amountOut);
        if (kAfter < kBefore) revert InvariantViolated(kBefore, kAfter);

        IERC20(tokenIn).safeTransferFrom(msg.sender, address(this), amountIn);
        if (baseIn) {
            (reserveBase, reserveQuote) = (reserveIn + amountIn, reserveOut - amountOut);
            quote.safeTransfer(to, amountOut);
        } else {
            (reserveQuote, reserveBase) = (reserveIn + amountIn, reserveOut - amountOut);
            base.safeTransfer(to, amountOut);
        }
        emit Swapped(msg.sender, tokenIn, amountIn, amountOut, to);
    }

    function getAmountOut(uint256 amountIn, uint256 reserveIn, uint256 reserveOut) public pure returns (uint256) {
        if (reserveIn == 0 || reserveOut == 0) return 0;
        uint256 amountInWithFee = amountIn * (10_000 - FEE_BPS);
        return amountInWithFee * reserveOut / (reserveIn * 10_000 + amountInWithFee);
    }
}
