import pytest
from eth_utils import keccak

MASTER = 3
PRICE = 10
HOUR = 3_600
SEED = keccak(text="round zero seed, kept secret until the draw")
ZERO_ADDRESS = "0x" + "00" * 20
# Lottery.Round, in the order round(uint256) returns it (the coin service decodes it so).
FIELDS = (
    "seedHash",
    "ticketPrice",
    "burnMasterId",
    "sharesPerTicket",
    "opensAt",
    "closesAt",
    "maxPerHolder",
    "closeBlock",
    "drawn",
    "ticketCount",
    "pot",
    "winningTicket",
    "winner",
)


def round_of(lottery, round_id: int) -> dict:
    return dict(zip(FIELDS, lottery.functions.round(round_id).call(), strict=True))


def mine(chain, blocks: int) -> None:
    """Mines empty blocks (eth-tester mines one block per transaction otherwise)."""
    chain.w3.provider.ethereum_tester.mine_blocks(blocks)


def winning_ticket(chain, seed: bytes, close_block: int, ticket_count: int) -> int:
    """What anyone computes from the revealed seed and the chain:
    uint256(keccak256(abi.encodePacked(seed, blockhash(closeBlock + 1)))) % ticketCount,
    with the draw block's hash read from the chain."""
    draw_block_hash = bytes(chain.w3.eth.get_block(close_block + 1).hash)
    return int.from_bytes(keccak(seed + draw_block_hash), "big") % ticket_count


def ref(text: str) -> bytes:
    """A payment reference as the service passes it (a transaction hash)."""
    return keccak(text=text)


def close(chain, lottery, round_id: int, sender: str | None = None) -> int:
    """Closes the round and mines its draw block; returns closeBlock."""
    receipt = chain.send(lottery.functions.close(round_id), sender=sender)
    mine(chain, 1)
    return receipt.blockNumber


@pytest.fixture
def setup(chain):
    owner, minter = chain.accounts[0], chain.accounts[1]
    usd = chain.deploy("ArtistCoin", "Test USD", "TUSD", owner, 10**24, owner)
    shares = chain.deploy("MasterShares", "https://audifi.test/{id}", owner)
    chain.send(shares.functions.grantRole(shares.functions.MINTER_ROLE().call(), minter))
    chain.send(shares.functions.openIpo(MASTER, 10_000, owner, 0))
    lottery = chain.deploy("Lottery", usd.address, shares.address, owner)
    chain.send(usd.functions.approve(lottery.address, 10**24))
    for player in chain.accounts[2:6]:
        chain.send(usd.functions.transfer(player, 1_000))
        chain.send(usd.functions.approve(lottery.address, 1_000), sender=player)
        chain.send(shares.functions.mint(player, MASTER, 50), sender=minter)
    now = chain.now()
    receipt = chain.send(
        lottery.functions.openRound(keccak(SEED), PRICE, MASTER, 5, now, now + HOUR, 0)
    )
    (opened,) = chain.events(lottery, "RoundOpened", receipt)
    assert opened.args.seedHash == keccak(SEED)
    assert (opened.args.opensAt, opened.args.closesAt, opened.args.maxPerHolder) == (
        now,
        now + HOUR,
        0,
    )
    assert opened.args.pot == 0
    return usd, shares, lottery


def test_round_fields_are_returned_in_the_agreed_order(chain, setup):
    _, _, lottery = setup
    (abi,) = [e for e in lottery.abi if e.get("name") == "round"]
    assert tuple(c["name"] for c in abi["outputs"][0]["components"]) == FIELDS
    state = round_of(lottery, 0)
    assert (state["ticketPrice"], state["sharesPerTicket"], state["closeBlock"]) == (PRICE, 5, 0)
    assert lottery.functions.carriedOver().call() == 0


def test_tickets_are_bought_with_the_payment_token(chain, setup):
    usd, _, lottery = setup
    alice, bob = chain.accounts[2], chain.accounts[3]
    receipt = chain.send(lottery.functions.buyTickets(0, 3), sender=alice)
    (event,) = chain.events(lottery, "TicketsBought", receipt)
    assert (event.args.firstTicket, event.args.count, event.args.paid) == (0, 3, 30)
    chain.send(lottery.functions.buyTickets(0, 2), sender=bob)
    assert usd.functions.balanceOf(lottery.address).call() == 50
    assert round_of(lottery, 0)["pot"] == 50
    assert [lottery.functions.ticketHolder(0, t).call() for t in range(5)] == [alice] * 3 + [
        bob
    ] * 2
    assert lottery.functions.ticketsOf(0, alice).call() == 3
    assert lottery.functions.ticketsOf(0, bob).call() == 2
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
    assert round_of(lottery, 0)["ticketCount"] == 2
    assert lottery.functions.ticketsOf(0, carol).call() == 2
    with chain.reverts(shares, "ERC1155InsufficientBalance"):
        lottery.functions.burnForTickets(0, 9).transact({"from": carol})


def test_tickets_are_sold_only_within_the_window(chain, setup):
    _, shares, lottery = setup
    alice = chain.accounts[2]
    chain.send(shares.functions.setApprovalForAll(lottery.address, True), sender=alice)
    opens = chain.now() + HOUR
    chain.send(lottery.functions.openRound(keccak(SEED), PRICE, MASTER, 5, opens, opens + HOUR, 0))
    with chain.reverts(lottery, "RoundNotOpen", 1, opens):
        lottery.functions.buyTickets(1, 1).transact({"from": alice})
    with chain.reverts(lottery, "RoundNotOpen", 1, opens):
        lottery.functions.burnForTickets(1, 1).transact({"from": alice})
    chain.advance(HOUR)
    chain.send(lottery.functions.buyTickets(1, 1), sender=alice)
    chain.send(lottery.functions.burnForTickets(1, 1), sender=alice)
    chain.advance(HOUR)
    with chain.reverts(lottery, "SalesClosed", 1):
        lottery.functions.buyTickets(1, 1).transact({"from": alice})
    with chain.reverts(lottery, "SalesClosed", 1):
        lottery.functions.burnForTickets(1, 1).transact({"from": alice})
    assert round_of(lottery, 1)["ticketCount"] == 2


def test_a_holder_cap_covers_buying_burning_and_issuing(chain, setup):
    _, shares, lottery = setup
    alice, bob = chain.accounts[2], chain.accounts[3]
    chain.send(shares.functions.setApprovalForAll(lottery.address, True), sender=alice)
    now = chain.now()
    chain.send(lottery.functions.openRound(keccak(SEED), PRICE, MASTER, 5, now, now + HOUR, 3))
    assert round_of(lottery, 1)["maxPerHolder"] == 3
    chain.send(lottery.functions.buyTickets(1, 2), sender=alice)
    with chain.reverts(lottery, "TicketCapExceeded", 1, alice, 2, 2, 3):
        lottery.functions.buyTickets(1, 2).transact({"from": alice})
    with chain.reverts(lottery, "TicketCapExceeded", 1, alice, 2, 2, 3):
        lottery.functions.burnForTickets(1, 2).transact({"from": alice})
    with chain.reverts(lottery, "TicketCapExceeded", 1, alice, 2, 2, 3):
        lottery.functions.issueTickets(1, alice, 2, 0, ref("card 1")).transact()
    chain.send(lottery.functions.issueTickets(1, alice, 1, 0, ref("card 1")))
    assert lottery.functions.ticketsOf(1, alice).call() == 3
    with chain.reverts(lottery, "TicketCapExceeded", 1, alice, 3, 1, 3):
        lottery.functions.burnForTickets(1, 1).transact({"from": alice})
    chain.send(lottery.functions.buyTickets(1, 3), sender=bob)  # the cap is per holder
    with chain.reverts(lottery, "TicketCapExceeded", 1, bob, 3, 1, 3):
        lottery.functions.issueTickets(1, bob, 1, 0, ref("card 2")).transact()
    assert round_of(lottery, 1)["ticketCount"] == 6
    chain.send(lottery.functions.buyTickets(0, 5), sender=alice)  # round 0 has no cap


def test_issued_tickets_are_owner_only_grow_the_pot_and_use_each_ref_once(chain, setup):
    usd, _, lottery = setup
    owner, alice, bob = chain.accounts[0], chain.accounts[2], chain.accounts[3]
    paid = ref("treasury payment tx")
    with chain.reverts(lottery, "OwnableUnauthorizedAccount", alice):
        lottery.functions.issueTickets(0, alice, 2, 0, paid).transact({"from": alice})
    chain.send(lottery.functions.buyTickets(0, 1), sender=bob)
    owner_before = usd.functions.balanceOf(owner).call()
    receipt = chain.send(lottery.functions.issueTickets(0, alice, 2, 25, paid))
    (event,) = chain.events(lottery, "TicketsIssued", receipt)
    assert event.args.roundId == 0 and event.args.holder == alice
    assert (event.args.firstTicket, event.args.count, event.args.potAdded) == (1, 2, 25)
    assert event.args.ref == paid
    assert usd.functions.balanceOf(owner).call() == owner_before - 25
    assert usd.functions.balanceOf(lottery.address).call() == PRICE + 25
    assert round_of(lottery, 0)["pot"] == PRICE + 25
    assert [lottery.functions.ticketHolder(0, t).call() for t in range(3)] == [bob, alice, alice]
    assert lottery.functions.ticketsOf(0, alice).call() == 2
    assert lottery.functions.refUsed(paid).call()
    with chain.reverts(lottery, "RefUsed", paid):
        lottery.functions.issueTickets(0, bob, 1, 0, paid).transact()
    now = chain.now()
    chain.send(lottery.functions.openRound(keccak(SEED), PRICE, MASTER, 5, now, now + HOUR, 0))
    with chain.reverts(lottery, "RefUsed", paid):  # once ever, across rounds
        lottery.functions.issueTickets(1, bob, 1, 0, paid).transact()
    # a card payment: tickets without a pot transfer
    chain.send(lottery.functions.issueTickets(1, bob, 1, 0, ref("card payment")))
    assert usd.functions.balanceOf(owner).call() == owner_before - 25
    assert round_of(lottery, 1)["pot"] == 0
    with chain.reverts(lottery, "ZeroAmount"):
        lottery.functions.issueTickets(1, bob, 0, 0, ref("none")).transact()
    with chain.reverts(lottery, "ZeroHolder"):
        lottery.functions.issueTickets(1, ZERO_ADDRESS, 1, 0, ref("nobody")).transact()
    with chain.reverts(lottery, "UnknownRound", 9):
        lottery.functions.issueTickets(9, bob, 1, 0, ref("nowhere")).transact()


def test_issuing_goes_on_after_closes_at_until_the_close(chain, setup):
    _, _, lottery = setup
    alice = chain.accounts[2]
    opens = chain.now() + HOUR
    chain.send(lottery.functions.openRound(keccak(SEED), PRICE, MASTER, 5, opens, opens + HOUR, 0))
    with chain.reverts(lottery, "RoundNotOpen", 1, opens):
        lottery.functions.issueTickets(1, alice, 1, 0, ref("early")).transact()
    chain.advance(2 * HOUR)
    with chain.reverts(lottery, "SalesClosed", 1):
        lottery.functions.buyTickets(1, 1).transact({"from": alice})
    chain.send(lottery.functions.issueTickets(1, alice, 1, 10, ref("paid before the close")))
    chain.send(lottery.functions.close(1))
    with chain.reverts(lottery, "AlreadyClosed", 1):
        lottery.functions.issueTickets(1, alice, 1, 10, ref("too late")).transact()
    state = round_of(lottery, 1)
    assert (state["ticketCount"], state["pot"]) == (1, 10)


def test_anyone_closes_a_round_once_from_closes_at(chain, setup):
    _, _, lottery = setup
    closes = round_of(lottery, 0)["closesAt"]
    chain.send(lottery.functions.buyTickets(0, 2), sender=chain.accounts[2])
    with chain.reverts(lottery, "RoundStillOpen", 0, closes):
        lottery.functions.close(0).transact({"from": chain.accounts[7]})
    chain.advance(HOUR)
    receipt = chain.send(lottery.functions.close(0), sender=chain.accounts[7])
    (event,) = chain.events(lottery, "RoundClosed", receipt)
    assert (event.args.roundId, event.args.closeBlock) == (0, receipt.blockNumber)
    assert (event.args.ticketCount, event.args.pot) == (2, 2 * PRICE)
    assert round_of(lottery, 0)["closeBlock"] == receipt.blockNumber
    with chain.reverts(lottery, "AlreadyClosed", 0):
        lottery.functions.close(0).transact({"from": chain.accounts[7]})
    with chain.reverts(lottery, "UnknownRound", 4):
        lottery.functions.close(4).transact()


def test_the_winner_is_recomputable_from_the_seed_and_the_draw_block(chain, setup):
    usd, shares, lottery = setup
    players = chain.accounts[2:6]
    holders = []
    for i, player in enumerate(players):
        chain.send(lottery.functions.buyTickets(0, i + 1), sender=player)
        holders += [player] * (i + 1)
    chain.send(shares.functions.setApprovalForAll(lottery.address, True), sender=players[0])
    chain.send(lottery.functions.burnForTickets(0, 4), sender=players[0])
    holders += [players[0]] * 4
    chain.send(lottery.functions.issueTickets(0, players[1], 3, 30, ref("treasury tx")))
    holders += [players[1]] * 3
    pot = PRICE * 10 + 30
    chain.advance(HOUR)
    with chain.reverts(lottery, "NotClosed", 0):
        lottery.functions.reveal(0, SEED).transact()
    receipt = chain.send(lottery.functions.close(0))
    close_block = receipt.blockNumber
    with chain.reverts(lottery, "DrawBlockNotMined", 0, close_block + 1):
        lottery.functions.reveal(0, SEED).transact()
    mine(chain, 1)
    with chain.reverts(lottery, "SeedMismatch", 0):
        lottery.functions.reveal(0, keccak(text="a guess")).transact()
    assert not round_of(lottery, 0)["drawn"]
    receipt = chain.send(lottery.functions.reveal(0, SEED), sender=chain.accounts[7])
    (event,) = chain.events(lottery, "RoundDrawn", receipt)
    expected_ticket = winning_ticket(chain, SEED, close_block, len(holders))
    winner = holders[expected_ticket]
    assert event.args.seed == SEED
    assert event.args.drawBlockHash == chain.w3.eth.get_block(close_block + 1).hash
    assert (event.args.winningTicket, event.args.winner, event.args.prize) == (
        expected_ticket,
        winner,
        pot,
    )
    state = round_of(lottery, 0)
    assert state["drawn"] and (state["winningTicket"], state["winner"]) == (expected_ticket, winner)
    spent = PRICE * (players.index(winner) + 1)
    assert usd.functions.balanceOf(winner).call() == 1_000 - spent + pot
    assert usd.functions.balanceOf(lottery.address).call() == 0
    with chain.reverts(lottery, "AlreadyDrawn", 0):
        lottery.functions.reveal(0, SEED).transact()
    with chain.reverts(lottery, "AlreadyDrawn", 0):
        lottery.functions.close(0).transact()
    with chain.reverts(lottery, "AlreadyDrawn", 0):
        lottery.functions.addToPot(0, 1).transact()


def test_an_unrevealed_draw_expires_and_the_round_is_closed_again(chain, setup):
    usd, _, lottery = setup
    alice, bob = chain.accounts[2], chain.accounts[3]
    chain.send(lottery.functions.buyTickets(0, 2), sender=alice)
    chain.send(lottery.functions.buyTickets(0, 3), sender=bob)
    chain.advance(HOUR)
    first_close = close(chain, lottery, 0)
    # The draw block's hash stays readable for 256 blocks: no second close meanwhile.
    mine(chain, 255)
    with chain.reverts(lottery, "AlreadyClosed", 0):
        lottery.functions.close(0).transact()
    mine(chain, 1)
    with chain.reverts(lottery, "DrawBlockExpired", 0, first_close + 1):
        lottery.functions.reveal(0, SEED).transact()
    receipt = chain.send(lottery.functions.close(0), sender=bob)
    second_close = receipt.blockNumber
    (event,) = chain.events(lottery, "RoundClosed", receipt)
    assert (event.args.closeBlock, event.args.ticketCount) == (second_close, 5)
    assert round_of(lottery, 0)["closeBlock"] == second_close
    with chain.reverts(lottery, "DrawBlockNotMined", 0, second_close + 1):
        lottery.functions.reveal(0, SEED).transact()
    mine(chain, 1)
    receipt = chain.send(lottery.functions.reveal(0, SEED))
    (drawn,) = chain.events(lottery, "RoundDrawn", receipt)
    expected_ticket = winning_ticket(chain, SEED, second_close, 5)
    assert drawn.args.drawBlockHash == chain.w3.eth.get_block(second_close + 1).hash
    assert drawn.args.winningTicket == expected_ticket
    assert drawn.args.winner == ([alice] * 2 + [bob] * 3)[expected_ticket]
    # Both closes are on chain for anyone checking the draw.
    closes = lottery.events.RoundClosed().get_logs(from_block=0)
    assert [log.args.closeBlock for log in closes] == [first_close, second_close]
    assert usd.functions.balanceOf(lottery.address).call() == 0


def test_a_round_without_tickets_carries_its_pot_over(chain, setup):
    usd, _, lottery = setup
    alice = chain.accounts[2]
    with chain.reverts(lottery, "OwnableUnauthorizedAccount", alice):
        lottery.functions.addToPot(0, 40).transact({"from": alice})
    with chain.reverts(lottery, "ZeroAmount"):
        lottery.functions.addToPot(0, 0).transact()
    receipt = chain.send(lottery.functions.addToPot(0, 40))
    (added,) = chain.events(lottery, "PotAdded", receipt)
    assert (added.args.roundId, added.args.amount, added.args.pot) == (0, 40, 40)
    chain.advance(HOUR)
    close_block = close(chain, lottery, 0)
    receipt = chain.send(lottery.functions.reveal(0, SEED))
    (carried,) = chain.events(lottery, "PotCarriedOver", receipt)
    assert (carried.args.roundId, carried.args.amount) == (0, 40)
    (drawn,) = chain.events(lottery, "RoundDrawn", receipt)
    assert drawn.args.drawBlockHash == chain.w3.eth.get_block(close_block + 1).hash
    assert (drawn.args.winningTicket, drawn.args.winner, drawn.args.prize) == (0, ZERO_ADDRESS, 0)
    state = round_of(lottery, 0)
    assert state["drawn"] and (state["winner"], state["pot"]) == (ZERO_ADDRESS, 0)
    assert lottery.functions.carriedOver().call() == 40
    assert usd.functions.balanceOf(lottery.address).call() == 40
    now = chain.now()
    receipt = chain.send(
        lottery.functions.openRound(keccak(SEED), PRICE, MASTER, 5, now, now + HOUR, 0)
    )
    (opened,) = chain.events(lottery, "RoundOpened", receipt)
    assert opened.args.pot == 40
    assert round_of(lottery, 1)["pot"] == 40
    assert lottery.functions.carriedOver().call() == 0
    # The next winner takes the carried pot with the new sales.
    chain.send(lottery.functions.buyTickets(1, 1), sender=alice)
    chain.advance(HOUR)
    close(chain, lottery, 1)
    receipt = chain.send(lottery.functions.reveal(1, SEED))
    (drawn,) = chain.events(lottery, "RoundDrawn", receipt)
    assert (drawn.args.winner, drawn.args.prize) == (alice, 40 + PRICE)
    assert usd.functions.balanceOf(alice).call() == 1_000 + 40


def test_rounds_are_opened_by_the_owner_with_their_own_ticket_rules(chain, setup):
    _, _, lottery = setup
    now = chain.now()
    closes = now + HOUR
    with chain.reverts(lottery, "OwnableUnauthorizedAccount"):
        lottery.functions.openRound(keccak(SEED), 1, MASTER, 1, now, closes, 0).transact(
            {"from": chain.accounts[2]}
        )
    with chain.reverts(lottery, "CloseInPast"):
        lottery.functions.openRound(keccak(SEED), 1, MASTER, 1, 0, chain.now(), 0).transact()
    with chain.reverts(lottery, "BadWindow"):
        lottery.functions.openRound(keccak(SEED), 1, MASTER, 1, closes, closes, 0).transact()
    chain.send(lottery.functions.openRound(keccak(b"x" * 32), 0, MASTER, 0, now, closes, 0))
    with chain.reverts(lottery, "BuyingDisabled", 1):
        lottery.functions.buyTickets(1, 1).transact({"from": chain.accounts[2]})
    with chain.reverts(lottery, "BurningDisabled", 1):
        lottery.functions.burnForTickets(1, 1).transact({"from": chain.accounts[2]})
    with chain.reverts(lottery, "ZeroAmount"):
        lottery.functions.buyTickets(0, 0).transact({"from": chain.accounts[2]})
    with chain.reverts(lottery, "UnknownRound", 7):
        lottery.functions.buyTickets(7, 1).transact({"from": chain.accounts[2]})
    assert lottery.functions.roundCount().call() == 2
