// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title An artist's fan coin: a fixed-supply ERC-20, minted once when the factory creates it.
contract ArtistCoin is ERC20 {
    address public immutable artist;

    constructor(string memory name_, string memory symbol_, address artist_, uint256 supply, address supplyRecipient)
        ERC20(name_, symbol_)
    {
        artist = artist_;
        _mint(supplyRecipient, supply);
    }
}
