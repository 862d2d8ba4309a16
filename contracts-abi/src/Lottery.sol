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

/// @title Lottery rounds whose draw neither the operator nor the last buyer chooses.
/// @notice The owner (the operator) opens a round publishing seedHash = keccak256(abi.encodePacked(seed))
/// and a sales window [opensAt, closesAt). In the window tickets are bought with the payment token
/// (the pot) or earned by burning MasterShares of the round's master (the holder approves this
/// contract with setApprovalForAll); the operator also issues tickets for purchases verified off
/// this contract (a payment to the treasury, a card payment), each payment reference once, until
/// the round is closed. A round may cap the tickets one holder gets (maxPerHolder, 0 = no cap).
///
/// From closesAt anyone calls close(), which records closeBlock = block.number; the draw block is
/// closeBlock + 1. Once it is mined, anyone holding the seed (the operator) reveals it and the
/// winning ticket is
///   uint256(keccak256(abi.encodePacked(seed, blockhash(closeBlock + 1)))) % ticketCount
/// so anyone can recompute it from the revealed seed and the chain; the pot goes to that ticket's
/// holder. A round drawn without tickets has no winner: its pot is carried over to the next round
/// opened.
///
/// Why neither side chooses the winner: the operator knows the seed, but the tickets are fixed at
/// the close (sales end at closesAt, issuing at close()) and the hash of the block after the
/// close is unknown then; the last buyer, and the producer of the draw block, see that block but
/// do not know the seed, which was committed before any sale.
///
/// Trust notes: the operator can withhold the reveal. The round then stays closed and undrawn
/// (`drawing`), publicly visible, and once the draw block's hash can no longer be read (more than
/// 256 blocks later) anyone may close() it again, which records a new draw block; every
/// RoundClosed is on chain, so a re-close is visible in the proof. The operator knows the seed,
/// so the operator must not hold tickets.
contract Lottery is Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Round {
        bytes32 seedHash;
        uint256 ticketPrice;
        uint256 burnMasterId;
        uint256 sharesPerTicket;
        uint64 opensAt;
        uint64 closesAt;
        uint32 maxPerHolder;
        uint64 closeBlock;
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

    /// @notice Pot of rounds drawn without tickets, handed to the next round opened.
    uint256 public carriedOver;
    /// @notice Payment references already used by issueTickets (each once, across all rounds).
    mapping(bytes32 ref => bool) public refUsed;

    Round[] private _rounds;
    mapping(uint256 roundId => TicketRange[]) private _ranges;
    mapping(uint256 roundId => mapping(address holder => uint256)) private _ticketsOf;

    error UnknownRound(uint256 roundId);
    error ZeroAmount();
    error ZeroHolder();
    error CloseInPast();
    error BadWindow();
    error RoundNotOpen(uint256 roundId, uint64 opensAt);
    /// @dev Sales ended at closesAt (named apart from the RoundClosed event: Solidity forbids the clash).
    error SalesClosed(uint256 roundId);
    error RoundStillOpen(uint256 roundId, uint64 closesAt);
    error AlreadyClosed(uint256 roundId);
    error NotClosed(uint256 roundId);
    error DrawBlockNotMined(uint256 roundId, uint256 drawBlock);
    error DrawBlockExpired(uint256 roundId, uint256 drawBlock);
    error AlreadyDrawn(uint256 roundId);
    error SeedMismatch(uint256 roundId);
    error BuyingDisabled(uint256 roundId);
    error BurningDisabled(uint256 roundId);
    error TicketCapExceeded(uint256 roundId, address holder, uint256 held, uint256 requested, uint256 cap);
    error RefUsed(bytes32 ref);
    error TicketOutOfRange(uint256 roundId, uint256 ticket);

    event RoundOpened(
        uint256 indexed roundId,
        bytes32 seedHash,
        uint256 ticketPrice,
        uint256 burnMasterId,
        uint256 sharesPerTicket,
        uint64 opensAt,
        uint64 closesAt,
        uint32 maxPerHolder,
        uint256 pot
    );
    event TicketsBought(uint256 indexed roundId, address indexed holder, uint256 firstTicket, uint256 count, uint256 paid);
    event TicketsEarned(
        uint256 indexed roundId, address indexed holder, uint256 firstTicket, uint256 count, uint256 sharesBurned
    );
    event TicketsIssued(
        uint256 indexed roundId,
        address indexed holder,
        uint256 firstTicket,
        uint256 count,
        uint256 potAdded,
        bytes32 ref
    );
    event PotAdded(uint256 indexed roundId, uint256 amount, uint256 pot);
    event RoundClosed(uint256 indexed roundId, uint64 closeBlock, uint256 ticketCount, uint256 pot);
    event PotCarriedOver(uint256 indexed roundId, uint256 amount);
    event RoundDrawn(
        uint256 indexed roundId,
        bytes32 seed,
        bytes32 drawBlockHash,
        uint256 winningTicket,
        address indexed winner,
        uint256 prize
    );

    constructor(IERC20 paymentToken_, IBurnableShares shares_, address initialOwner) Ownable(initialOwner) {
        paymentToken = paymentToken_;
        shares = shares_;
    }

    /// @notice Opens a round selling tickets in [opensAt, closesAt); its pot starts at carriedOver.
    /// @param seedHash keccak256(abi.encodePacked(seed)) of the seed revealed at the draw.
    /// @param ticketPrice price of one ticket in the payment token; 0 disables buying.
    /// @param sharesPerTicket shares of `burnMasterId` burnt per ticket; 0 disables burning.
    /// @param maxPerHolder most tickets one holder gets in the round (all paths); 0 = no cap.
    function openRound(
        bytes32 seedHash,
        uint256 ticketPrice,
        uint256 burnMasterId,
        uint256 sharesPerTicket,
        uint64 opensAt,
        uint64 closesAt,
        uint32 maxPerHolder
    ) external onlyOwner returns (uint256 roundId) {
        if (closesAt <= block.timestamp) revert CloseInPast();
        if (opensAt >= closesAt) revert BadWindow();
        roundId = _rounds.length;
        Round storage r = _rounds.push();
        r.seedHash = seedHash;
        r.ticketPrice = ticketPrice;
        r.burnMasterId = burnMasterId;
        r.sharesPerTicket = sharesPerTicket;
        r.opensAt = opensAt;
        r.closesAt = closesAt;
        r.maxPerHolder = maxPerHolder;
        r.pot = carriedOver;
        carriedOver = 0;
        emit RoundOpened(
            roundId, seedHash, ticketPrice, burnMasterId, sharesPerTicket, opensAt, closesAt, maxPerHolder, r.pot
        );
    }

    function buyTickets(uint256 roundId, uint256 count) external nonReentrant returns (uint256 firstTicket) {
        Round storage r = _onSale(roundId, count);
        if (r.ticketPrice == 0) revert BuyingDisabled(roundId);
        uint256 paid = r.ticketPrice * count;
        r.pot += paid;
        firstTicket = _issue(roundId, r, msg.sender, count);
        paymentToken.safeTransferFrom(msg.sender, address(this), paid);
        emit TicketsBought(roundId, msg.sender, firstTicket, count, paid);
    }

    function burnForTickets(uint256 roundId, uint256 count) external nonReentrant returns (uint256 firstTicket) {
        Round storage r = _onSale(roundId, count);
        if (r.sharesPerTicket == 0) revert BurningDisabled(roundId);
        uint256 burnt = r.sharesPerTicket * count;
        firstTicket = _issue(roundId, r, msg.sender, count);
        shares.burn(msg.sender, r.burnMasterId, burnt);
        emit TicketsEarned(roundId, msg.sender, firstTicket, count, burnt);
    }

    /// @notice Issues tickets for a purchase verified off this contract (a payment to the
    /// treasury, a card payment). Allowed from opensAt until the round is closed, also after
    /// closesAt (a payment made before it may be verified a little later): the draw block's hash
    /// is unknown until close().
    /// @param potAdded payment token pulled from the owner into the pot (0: none).
    /// @param ref the payment's reference (its transaction hash); each is used once, ever.
    function issueTickets(uint256 roundId, address holder, uint256 count, uint256 potAdded, bytes32 ref)
        external
        onlyOwner
        nonReentrant
        returns (uint256 firstTicket)
    {
        Round storage r = _round(roundId);
        if (count == 0) revert ZeroAmount();
        if (holder == address(0)) revert ZeroHolder();
        if (refUsed[ref]) revert RefUsed(ref);
        if (block.timestamp < r.opensAt) revert RoundNotOpen(roundId, r.opensAt);
        if (r.closeBlock != 0) revert AlreadyClosed(roundId);
        refUsed[ref] = true;
        r.pot += potAdded;
        firstTicket = _issue(roundId, r, holder, count);
        if (potAdded > 0) paymentToken.safeTransferFrom(msg.sender, address(this), potAdded);
        emit TicketsIssued(roundId, holder, firstTicket, count, potAdded, ref);
    }

    /// @notice Adds `amount` of the payment token, pulled from the owner, to a round's pot.
    function addToPot(uint256 roundId, uint256 amount) external onlyOwner nonReentrant {
        Round storage r = _round(roundId);
        if (amount == 0) revert ZeroAmount();
        if (r.drawn) revert AlreadyDrawn(roundId);
        r.pot += amount;
        paymentToken.safeTransferFrom(msg.sender, address(this), amount);
        emit PotAdded(roundId, amount, r.pot);
    }

    /// @notice Ends a round from closesAt (anyone): records closeBlock; the draw block is the
    /// next one. A closed round is closed again only once its draw block's hash can no longer be
    /// read (more than 256 blocks ago) without a reveal; each close is a RoundClosed event.
    function close(uint256 roundId) external {
        Round storage r = _round(roundId);
        if (block.timestamp < r.closesAt) revert RoundStillOpen(roundId, r.closesAt);
        if (r.drawn) revert AlreadyDrawn(roundId);
        if (r.closeBlock != 0 && !_drawBlockExpired(r.closeBlock)) revert AlreadyClosed(roundId);
        r.closeBlock = uint64(block.number);
        emit RoundClosed(roundId, r.closeBlock, r.ticketCount, r.pot);
    }

    /// @notice Reveals the committed seed, draws the winner and pays out the pot (anyone may call;
    /// only the operator knows the seed). Without tickets the pot is carried over instead.
    function reveal(uint256 roundId, bytes32 seed) external nonReentrant returns (address winner) {
        Round storage r = _round(roundId);
        if (r.closeBlock == 0) revert NotClosed(roundId);
        if (r.drawn) revert AlreadyDrawn(roundId);
        uint256 drawBlock = uint256(r.closeBlock) + 1;
        if (block.number <= drawBlock) revert DrawBlockNotMined(roundId, drawBlock);
        bytes32 drawBlockHash = blockhash(drawBlock);
        if (drawBlockHash == bytes32(0)) revert DrawBlockExpired(roundId, drawBlock);
        if (keccak256(abi.encodePacked(seed)) != r.seedHash) revert SeedMismatch(roundId);
        r.drawn = true;
        uint256 prize = r.pot;
        if (r.ticketCount == 0) {
            r.pot = 0;
            carriedOver += prize;
            emit PotCarriedOver(roundId, prize);
            emit RoundDrawn(roundId, seed, drawBlockHash, 0, address(0), 0);
            return address(0);
        }
        r.winningTicket = uint256(keccak256(abi.encodePacked(seed, drawBlockHash))) % r.ticketCount;
        winner = ticketHolder(roundId, r.winningTicket);
        r.winner = winner;
        if (prize > 0) paymentToken.safeTransfer(winner, prize);
        emit RoundDrawn(roundId, seed, drawBlockHash, r.winningTicket, winner, prize);
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

    /// @notice How many tickets `holder` has in round `roundId` (bought, earned and issued).
    function ticketsOf(uint256 roundId, address holder) external view returns (uint256) {
        return _ticketsOf[roundId][holder];
    }

    function round(uint256 roundId) external view returns (Round memory) {
        return _round(roundId);
    }

    function roundCount() external view returns (uint256) {
        return _rounds.length;
    }

    function _issue(uint256 roundId, Round storage r, address holder, uint256 count)
        private
        returns (uint256 firstTicket)
    {
        uint256 held = _ticketsOf[roundId][holder];
        if (r.maxPerHolder != 0 && held + count > r.maxPerHolder) {
            revert TicketCapExceeded(roundId, holder, held, count, r.maxPerHolder);
        }
        _ticketsOf[roundId][holder] = held + count;
        firstTicket = r.ticketCount;
        r.ticketCount = firstTicket + count;
        _ranges[roundId].push(TicketRange({holder: holder, end: r.ticketCount}));
    }

    /// @dev The round, if tickets are on sale in it now (opensAt <= block.timestamp < closesAt).
    function _onSale(uint256 roundId, uint256 count) private view returns (Round storage r) {
        r = _round(roundId);
        if (count == 0) revert ZeroAmount();
        if (block.timestamp < r.opensAt) revert RoundNotOpen(roundId, r.opensAt);
        if (block.timestamp >= r.closesAt) revert SalesClosed(roundId);
    }

    /// @dev Whether the draw block after `closeBlock` is mined and its hash no longer readable
    /// (blockhash covers the last 256 blocks), so the round may be closed again.
    function _drawBlockExpired(uint64 closeBlock) private view returns (bool) {
        uint256 drawBlock = uint256(closeBlock) + 1;
        return block.number > drawBlock && blockhash(drawBlock) == bytes32(0);
    }

    function _round(uint256 roundId) private view returns (Round storage) {
        if (roundId >= _rounds.length) revert UnknownRound(roundId);
        return _rounds[roundId];
    }
}
