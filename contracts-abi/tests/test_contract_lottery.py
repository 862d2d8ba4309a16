import pytest
from eth_utils import keccak

MASTER = 3
PRICE = 10
HOUR = 3_600
SEED = keccak(text="round zero seed, kept secret until the draw")


def winning_ticket(seed: bytes, round_id: int, ticket_count: int) -> int:
    """What anyone computes from the revealed seed:
    uint256(keccak256(abi.encodePacked(seed, roundId))) % ticketCount."""
    digest = keccak(seed + round_id.to_bytes(32, "big"))
    return int.from_bytes(digest, "big") % ticket_count


@pytest.fixture
def setup(chain):
    owner, minter = chain.accounts[0], chain.accounts[1]
    usd = chain.deploy("ArtistCoin", "Test USD", "TUSD", owner, 10**24, owner)
    shares = chain.deploy("MasterShares", "https://audifi.test/{id}", owner)
    chain.send(shares.functions.grantRole(shares.functions.MINTER_ROLE().call(), minter))
    chain.send(shares.functions.openIpo(MASTER, 10_000, owner, 0))
    lottery = chain.deploy("Lottery", usd.address, shares.address, owner)
    for player in chain.accounts[2:6]:
        chain.send(usd.functions.transfer(player, 1_000))
        chain.send(usd.functions.approve(lottery.address, 1_000), sender=player)
        chain.send(shares.functions.mint(player, MASTER, 50), sender=minter)
    closes = chain.now() + HOUR
    receipt = chain.send(lottery.functions.openRound(keccak(SEED), PRICE, MASTER, 5, closes))
    assert chain.events(lottery, "RoundOpened", receipt)[0].args.seedHash == keccak(SEED)
    return usd, shares, lottery


def test_tickets_are_bought_with_the_payment_token(chain, setup):
    usd, _, lottery = setup
    alice, bob = chain.accounts[2], chain.accounts[3]
    receipt = chain.send(lottery.functions.buyTickets(0, 3), sender=alice)
    (event,) = chain.events(lottery, "TicketsBought", receipt)
    assert (event.args.firstTicket, event.args.count, event.args.paid) == (0, 3, 30)
    chain.send(lottery.functions.buyTickets(0, 2), sender=bob)
    assert usd.functions.balanceOf(lottery.address).call() == 50
    assert [lottery.functions.ticketHolder(0, t).call() for t in range(5)] == [alice] * 3 + [
        bob
    ] * 2
    with chain.reverts(lottery, "TicketOutOfRange", 0, 5):
        lottery.functions.ticketHolder(0, 5).call()


def test_tickets_are_earned_by_burning_master_shares(chain, setup):
    _, shares, lottery = setup
    carol = chain.accounts[4]
    with chain.reverts(shares, "ERC1155MissingApprovalForAll"):
        lottery.functions.burnForTickets(0, 2).transact({"from": carol})
    chain.send(shares.functions.setApprovalForAll(lottery.address, True), sender=carol)
    receipt = chain.send(lottery.functions.burnForTickets(0, 2), sender=carol)
    (event,) = chain.events(lottery, "TicketsEarned", receipt)
    assert (event.args.count, event.args.sharesBurned) == (2, 10)
    assert shares.functions.balanceOf(carol, MASTER).call() == 40
    assert lottery.functions.round(0).call()[6] == 2  # ticketCount
    with chain.reverts(shares, "ERC1155InsufficientBalance"):
        lottery.functions.burnForTickets(0, 9).transact({"from": carol})


def test_the_winner_is_recomputable_from_the_revealed_seed(chain, setup):
    usd, shares, lottery = setup
    players = chain.accounts[2:6]
    holders = []
    for i, player in enumerate(players):
        chain.send(lottery.functions.buyTickets(0, i + 1), sender=player)
        holders += [player] * (i + 1)
    chain.send(shares.functions.setApprovalForAll(lottery.address, True), sender=players[0])
    chain.send(lottery.functions.burnForTickets(0, 4), sender=players[0])
    holders += [players[0]] * 4
    pot = PRICE * 10
    chain.advance(HOUR)
    receipt = chain.send(lottery.functions.reveal(0, SEED), sender=chain.accounts[7])
    (event,) = chain.events(lottery, "RoundDrawn", receipt)
    expected_ticket = winning_ticket(SEED, 0, len(holders))
    assert event.args.winningTicket == expected_ticket
    assert event.args.winner == holders[expected_ticket]
    assert event.args.prize == pot
    winner = holders[expected_ticket]
    spent = PRICE * (players.index(winner) + 1)
    assert usd.functions.balanceOf(winner).call() == 1_000 - spent + pot
    assert usd.functions.balanceOf(lottery.address).call() == 0
    with chain.reverts(lottery, "AlreadyDrawn", 0):
        lottery.functions.reveal(0, SEED).transact()


def test_a_wrong_seed_is_refused(chain, setup):
    _, _, lottery = setup
    chain.send(lottery.functions.buyTickets(0, 1), sender=chain.accounts[2])
    chain.advance(HOUR)
    with chain.reverts(lottery, "SeedMismatch", 0):
        lottery.functions.reveal(0, keccak(text="a guess")).transact()
    assert not lottery.functions.round(0).call()[5]  # not drawn


def test_reveal_waits_for_the_close_and_buying_stops_at_it(chain, setup):
    _, shares, lottery = setup
    alice = chain.accounts[2]
    chain.send(lottery.functions.buyTickets(0, 1), sender=alice)
    with chain.reverts(lottery, "RoundStillOpen"):
        lottery.functions.reveal(0, SEED).transact()
    chain.advance(HOUR)
    with chain.reverts(lottery, "RoundClosed", 0):
        lottery.functions.buyTickets(0, 1).transact({"from": alice})
    chain.send(shares.functions.setApprovalForAll(lottery.address, True), sender=alice)
    with chain.reverts(lottery, "RoundClosed", 0):
        lottery.functions.burnForTickets(0, 1).transact({"from": alice})


def test_a_round_without_tickets_cannot_be_drawn(chain, setup):
    _, _, lottery = setup
    chain.advance(HOUR)
    with chain.reverts(lottery, "NoTickets", 0):
        lottery.functions.reveal(0, SEED).transact()


def test_rounds_are_opened_by_the_owner_with_their_own_ticket_rules(chain, setup):
    _, _, lottery = setup
    closes = chain.now() + HOUR
    with chain.reverts(lottery, "OwnableUnauthorizedAccount"):
        lottery.functions.openRound(keccak(SEED), 1, MASTER, 1, closes).transact(
            {"from": chain.accounts[2]}
        )
    with chain.reverts(lottery, "CloseInPast"):
        lottery.functions.openRound(keccak(SEED), 1, MASTER, 1, chain.now()).transact()
    chain.send(lottery.functions.openRound(keccak(b"x" * 32), 0, MASTER, 0, closes))
    with chain.reverts(lottery, "BuyingDisabled", 1):
        lottery.functions.buyTickets(1, 1).transact({"from": chain.accounts[2]})
    with chain.reverts(lottery, "BurningDisabled", 1):
        lottery.functions.burnForTickets(1, 1).transact({"from": chain.accounts[2]})
    with chain.reverts(lottery, "ZeroAmount"):
        lottery.functions.buyTickets(0, 0).transact({"from": chain.accounts[2]})
    with chain.reverts(lottery, "UnknownRound", 7):
        lottery.functions.buyTickets(7, 1).transact({"from": chain.accounts[2]})
    assert lottery.functions.roundCount().call() == 2
