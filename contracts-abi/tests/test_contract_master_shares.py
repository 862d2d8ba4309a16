import pytest

MASTER = 7
CAP = 1_000


@pytest.fixture
def shares(chain):
    admin, minter = chain.accounts[0], chain.accounts[1]
    contract = chain.deploy("MasterShares", "https://audifi.test/masters/{id}.json", admin)
    chain.send(contract.functions.grantRole(contract.functions.MINTER_ROLE().call(), minter))
    chain.send(contract.functions.openIpo(MASTER, CAP, chain.accounts[9], 500))
    return contract


def test_minter_mints_shares_of_an_opened_ipo(chain, shares):
    fan, minter = chain.accounts[2], chain.accounts[1]
    receipt = chain.send(shares.functions.mint(fan, MASTER, 400), sender=minter)
    (event,) = chain.events(shares, "SharesMinted", receipt)
    assert event.args.masterId == MASTER
    assert event.args.mintedTotal == 400
    assert shares.functions.balanceOf(fan, MASTER).call() == 400
    assert shares.functions.mintedOf(MASTER).call() == 400
    assert shares.functions.capOf(MASTER).call() == CAP


def test_minting_past_the_ipo_cap_is_refused(chain, shares):
    fan, minter = chain.accounts[2], chain.accounts[1]
    chain.send(shares.functions.mint(fan, MASTER, CAP - 1), sender=minter)
    with chain.reverts(shares, "CapExceeded", MASTER, CAP, CAP + 1):
        shares.functions.mint(fan, MASTER, 2).transact({"from": minter})
    chain.send(shares.functions.mint(fan, MASTER, 1), sender=minter)
    assert shares.functions.mintedOf(MASTER).call() == CAP


def test_burnt_shares_do_not_reopen_the_cap(chain, shares):
    fan, minter = chain.accounts[2], chain.accounts[1]
    chain.send(shares.functions.mint(fan, MASTER, CAP), sender=minter)
    chain.send(shares.functions.burn(fan, MASTER, 10), sender=fan)
    with chain.reverts(shares, "CapExceeded"):
        shares.functions.mint(fan, MASTER, 1).transact({"from": minter})


def test_only_the_minter_mints(chain, shares):
    stranger = chain.accounts[3]
    with chain.reverts(shares, "AccessControlUnauthorizedAccount"):
        shares.functions.mint(stranger, MASTER, 1).transact({"from": stranger})
    # The admin holds no MINTER_ROLE either.
    with chain.reverts(shares, "AccessControlUnauthorizedAccount"):
        shares.functions.mint(stranger, MASTER, 1).transact({"from": chain.accounts[0]})


def test_minting_needs_an_opened_ipo(chain, shares):
    with chain.reverts(shares, "IpoNotOpened", 99):
        shares.functions.mint(chain.accounts[2], 99, 1).transact({"from": chain.accounts[1]})


def test_an_ipo_opens_once_with_a_positive_cap_and_only_by_the_admin(chain, shares):
    with chain.reverts(shares, "IpoAlreadyOpened", MASTER):
        shares.functions.openIpo(MASTER, 5, chain.accounts[9], 100).transact()
    with chain.reverts(shares, "ZeroCap"):
        shares.functions.openIpo(8, 0, chain.accounts[9], 100).transact()
    with chain.reverts(shares, "AccessControlUnauthorizedAccount"):
        shares.functions.openIpo(8, 5, chain.accounts[9], 100).transact({"from": chain.accounts[1]})


def test_royalty_info_is_set_per_master(chain, shares):
    chain.send(shares.functions.openIpo(8, 10, chain.accounts[8], 250))
    assert shares.functions.royaltyInfo(MASTER, 10_000).call() == [chain.accounts[9], 500]
    assert shares.functions.royaltyInfo(8, 10_000).call() == [chain.accounts[8], 250]
    assert shares.functions.royaltyInfo(99, 10_000).call()[1] == 0
    with chain.reverts(shares, "ERC2981InvalidTokenRoyalty"):
        shares.functions.openIpo(9, 10, chain.accounts[8], 10_001).transact()


def test_supports_erc1155_erc2981_and_access_control(shares):
    for interface_id in ("0xd9b67a26", "0x2a55205a", "0x7965db0b", "0x01ffc9a7"):
        assert shares.functions.supportsInterface(interface_id).call()
