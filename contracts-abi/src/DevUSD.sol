// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title A development stablecoin: the payment/quote token of the embedded and local chains.
/// @notice Only for development chains; on Base the platform uses the real USDC. Like USDC it
/// has 6 decimals and supports EIP-2612 permits. The owner (the platform's faucet/treasury)
/// mints test money, at most MAX_MINT per call.
contract DevUSD is ERC20, ERC20Permit, Ownable {
    uint256 public constant MAX_MINT = 1_000_000_000 * 10 ** 6;

    error MintTooLarge(uint256 amount, uint256 max);

    constructor(address initialOwner)
        ERC20("AudiFi Dev USD", "dUSD")
        ERC20Permit("AudiFi Dev USD")
        Ownable(initialOwner)
    {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external onlyOwner {
        if (amount > MAX_MINT) revert MintTooLarge(amount, MAX_MINT);
        _mint(to, amount);
    }
}
