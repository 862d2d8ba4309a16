// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @notice The part of MasterShares (ERC1155Burnable) the lottery uses.
interface IBurnableShares {
    function burn(address account, uint256 id, uint256 value) external;
}

/// @title Lottery rounds with a draw committed in advance.
/// @notice The owner opens a round publishing seedHash = keccak256(abi.encodePacked(seed)).
/// Until the round closes, tickets are bought with the payment token (the pot) or earned by
/// burning MasterShares of the round's master (the holder approves this contract with
/// setApprovalForAll). After the close anyone holding the seed reveals it; the winning ticket is
///   uint256(keccak256(abi.encodePacked(seed, roundId))) % ticketCount
/// so anyone can recompute it, and the pot goes to that ticket's holder. Trust note: the owner
/// knows the seed, so the owner must not hold tickets; a round never revealed keeps its pot.
contract Lottery is Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Round {
        bytes32 seedHash;
        uint256 ticketPrice;
        uint256 burnMasterId;
        uint256 sharesPerTicket;
        uint64 closesAt;
        bool drawn;
        uint256 ticketCount;
        uint256 pot;
        uint256 winningTicket;
        address winner;
    }

    /// @dev Tickets are stored as ranges: holder owns tickets [previous end, end).
    struct TicketRange {
        address holder;
        uint256 end;
    }

    IERC20 public immutable paymentToken;
    IBurnableShares public immutable shares;

    Round[] private _rounds;
    mapping(uint256 roundId => TicketRange[]) private _ranges;

    error UnknownRound(uint256 roundId);
    error ZeroAmount();
    error CloseInPast();
    error RoundClosed(uint256 roundId);
    error RoundStillOpen(uint256 roundId, uint64 closesAt);
    error AlreadyDrawn(uint256 roundId);
    error SeedMismatch(uint256 roundId);
    error BuyingDisabled(uint256 roundId);
    error BurningDisabled(uint256 roundId);
    error NoTickets(uint256 roundId);
    error TicketOutOfRange(uint256 roundId, uint256 ticket);

    event RoundOpened(
        uint256 indexed roundId,
        bytes32 seedHash,
        uint256 ticketPrice,
        uint256 burnMasterId,
        uint256 sharesPerTicket,
        uint64 closesAt
    );
    event TicketsBought(uint256 indexed roundId, address indexed holder, uint256 firstTicket, uint256 count, uint256 paid);
    event TicketsEarned(
        uint256 indexed roundId, address indexed holder, uint256 firstTicket, uint256 count, uint256 sharesBurned
    );
    event RoundDrawn(uint256 indexed roundId, bytes32 seed, uint256 winningTicket, address indexed winner, uint256 prize);

    constructor(IERC20 paymentToken_, IBurnableShares shares_, address initialOwner) Ownable(initialOwner) {
        paymentToken = paymentToken_;
        shares = shares_;
    }

    /// @param ticketPrice price of one ticket in the payment token; 0 disables buying.
    /// @param sharesPerTicket shares of `burnMasterId` burnt per ticket; 0 disables burning.
    function openRound(
        bytes32 seedHash,
        uint256 ticketPrice,
        uint256 burnMasterId,
        uint256 sharesPerTicket,
        uint64 closesAt
    ) external onlyOwner returns (uint256 roundId) {
        if (closesAt <= block.timestamp) revert CloseInPast();
        roundId = _rounds.length;
        Round storage r = _rounds.push();
        r.seedHash = seedHash;
        r.ticketPrice = ticketPrice;
        r.burnMasterId = burnMasterId;
        r.sharesPerTicket = sharesPerTicket;
        r.closesAt = closesAt;
        emit RoundOpened(roundId, seedHash, ticketPrice, burnMasterId, sharesPerTicket, closesAt);
    }

    function buyTickets(uint256 roundId, uint256 count) external nonReentrant returns (uint256 firstTicket) {
        Round storage r = _openRound(roundId, count);
        if (r.ticketPrice == 0) revert BuyingDisabled(roundId);
        uint256 paid = r.ticketPrice * count;
        r.pot += paid;
        firstTicket = _issue(roundId, r, count);
        paymentToken.safeTransferFrom(msg.sender, address(this), paid);
        emit TicketsBought(roundId, msg.sender, firstTicket, count, paid);
    }

    function burnForTickets(uint256 roundId, uint256 count) external nonReentrant returns (uint256 firstTicket) {
        Round storage r = _openRound(roundId, count);
        if (r.sharesPerTicket == 0) revert BurningDisabled(roundId);
        uint256 burnt = r.sharesPerTicket * count;
        firstTicket = _issue(roundId, r, count);
        shares.burn(msg.sender, r.burnMasterId, burnt);
        emit TicketsEarned(roundId, msg.sender, firstTicket, count, burnt);
    }

    /// @notice Reveals the committed seed, draws the winner and pays out the pot.
    function reveal(uint256 roundId, bytes32 seed) external nonReentrant returns (address winner) {
        Round storage r = _round(roundId);
        if (block.timestamp < r.closesAt) revert RoundStillOpen(roundId, r.closesAt);
        if (r.drawn) revert AlreadyDrawn(roundId);
        if (keccak256(abi.encodePacked(seed)) != r.seedHash) revert SeedMismatch(roundId);
        if (r.ticketCount == 0) revert NoTickets(roundId);
        r.drawn = true;
        r.winningTicket = uint256(keccak256(abi.encodePacked(seed, roundId))) % r.ticketCount;
        winner = ticketHolder(roundId, r.winningTicket);
        r.winner = winner;
        uint256 prize = r.pot;
        if (prize > 0) paymentToken.safeTransfer(winner, prize);
        emit RoundDrawn(roundId, seed, r.winningTicket, winner, prize);
    }

    /// @notice The holder of ticket number `ticket` (0-based) in round `roundId`.
    function ticketHolder(uint256 roundId, uint256 ticket) public view returns (address) {
        Round storage r = _round(roundId);
        if (ticket >= r.ticketCount) revert TicketOutOfRange(roundId, ticket);
        TicketRange[] storage ranges = _ranges[roundId];
        uint256 lo = 0;
        uint256 hi = ranges.length - 1;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            if (ranges[mid].end > ticket) hi = mid;
            else lo = mid + 1;
        }
        return ranges[lo].holder;
    }

    function round(uint256 roundId) external view returns (Round memory) {
        return _round(roundId);
    }

    function roundCount() external view returns (uint256) {
        return _rounds.length;
    }

    function _issue(uint256 roundId, Round storage r, uint256 count) private returns (uint256 firstTicket) {
        firstTicket = r.ticketCount;
        r.ticketCount = firstTicket + count;
        _ranges[roundId].push(TicketRange({holder: msg.sender, end: r.ticketCount}));
    }

    function _openRound(uint256 roundId, uint256 count) private view returns (Round storage r) {
        r = _round(roundId);
        if (count == 0) revert ZeroAmount();
        if (block.timestamp >= r.closesAt) revert RoundClosed(roundId);
    }

    function _round(uint256 roundId) private view returns (Round storage) {
        if (roundId >= _rounds.length) revert UnknownRound(roundId);
        return _rounds[roundId];
    }
}
