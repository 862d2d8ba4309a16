// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ArtistCoin} from "./ArtistCoin.sol";

/// @title Creates one ArtistCoin per artist; an artist can never get a second.
contract ArtistCoinFactory is Ownable {
    mapping(address artist => address coin) public coinOf;
    address[] private _coins;

    error CoinAlreadyExists(address artist, address coin);
    error ZeroArtist();

    event ArtistCoinCreated(
        address indexed artist, address indexed coin, string name, string symbol, uint256 supply, address supplyRecipient
    );

    constructor(address initialOwner) Ownable(initialOwner) {}

    function createCoin(
        address artist,
        string calldata name,
        string calldata symbol,
        uint256 supply,
        address supplyRecipient
    ) external onlyOwner returns (address coin) {
        if (artist == address(0)) revert ZeroArtist();
        address existing = coinOf[artist];
        if (existing != address(0)) revert CoinAlreadyExists(artist, existing);
        coin = address(new ArtistCoin(name, symbol, artist, supply, supplyRecipient));
        coinOf[artist] = coin;
        _coins.push(coin);
        emit ArtistCoinCreated(artist, coin, name, symbol, supply, supplyRecipient);
    }

    function coinCount() external view returns (uint256) {
        return _coins.length;
    }

    function coinAt(uint256 i) external view returns (address) {
        return _coins[i];
    }
}
