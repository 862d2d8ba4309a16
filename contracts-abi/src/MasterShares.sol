// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {ERC1155Burnable} from "@openzeppelin/contracts/token/ERC1155/extensions/ERC1155Burnable.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";

/// @title Shares of a master recording, one ERC-1155 token id per master.
/// @notice Each master is offered once, in an IPO with a supply cap. Shares are minted by the
/// platform (MINTER_ROLE) as they are sold, never past the cap; burnt shares do not reopen it.
/// Holders may burn their shares (the Lottery does, with the holder's approval, for tickets).
contract MasterShares is ERC1155Burnable, ERC2981, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    struct Ipo {
        uint256 cap;
        uint256 minted;
        bool opened;
    }

    mapping(uint256 masterId => Ipo) private _ipos;

    error IpoAlreadyOpened(uint256 masterId);
    error IpoNotOpened(uint256 masterId);
    error ZeroCap();
    error ZeroAmount();
    error CapExceeded(uint256 masterId, uint256 cap, uint256 requestedTotal);

    event IpoOpened(uint256 indexed masterId, uint256 cap, address royaltyReceiver, uint96 royaltyBps);
    event SharesMinted(uint256 indexed masterId, address indexed to, uint256 amount, uint256 mintedTotal);

    constructor(string memory uri_, address admin) ERC1155(uri_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Opens the IPO of `masterId`: at most `cap` shares will ever be minted, and sales
    /// of any share pay `royaltyBps` (of 10000) to `royaltyReceiver` (ERC-2981).
    function openIpo(uint256 masterId, uint256 cap, address royaltyReceiver, uint96 royaltyBps)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (_ipos[masterId].opened) revert IpoAlreadyOpened(masterId);
        if (cap == 0) revert ZeroCap();
        _ipos[masterId] = Ipo({cap: cap, minted: 0, opened: true});
        _setTokenRoyalty(masterId, royaltyReceiver, royaltyBps);
        emit IpoOpened(masterId, cap, royaltyReceiver, royaltyBps);
    }

    function mint(address to, uint256 masterId, uint256 amount) external onlyRole(MINTER_ROLE) {
        Ipo storage ipo = _ipos[masterId];
        if (!ipo.opened) revert IpoNotOpened(masterId);
        if (amount == 0) revert ZeroAmount();
        uint256 total = ipo.minted + amount;
        if (total > ipo.cap) revert CapExceeded(masterId, ipo.cap, total);
        ipo.minted = total;
        _mint(to, masterId, amount, "");
        emit SharesMinted(masterId, to, amount, total);
    }

    function capOf(uint256 masterId) external view returns (uint256) {
        return _ipos[masterId].cap;
    }

    function mintedOf(uint256 masterId) external view returns (uint256) {
        return _ipos[masterId].minted;
    }

    function ipoOpened(uint256 masterId) external view returns (bool) {
        return _ipos[masterId].opened;
    }

    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC1155, ERC2981, AccessControl)
        returns (bool)
    {
        return super.supportsInterface(interfaceId);
    }
}
