import pytest


@pytest.fixture
def factory(chain):
    return chain.deploy("ArtistCoinFactory", chain.accounts[0])


def test_factory_creates_an_artist_coin_with_its_supply(chain, factory):
    artist, treasury = chain.accounts[1], chain.accounts[2]
    receipt = chain.send(
        factory.functions.createCoin(artist, "Nova Coin", "NOVA", 10**24, treasury)
    )
    (event,) = chain.events(factory, "ArtistCoinCreated", receipt)
    coin = chain.at("ArtistCoin", event.args.coin)
    assert factory.functions.coinOf(artist).call() == coin.address
    assert factory.functions.coinCount().call() == 1
    assert factory.functions.coinAt(0).call() == coin.address
    assert coin.functions.name().call() == "Nova Coin"
    assert coin.functions.symbol().call() == "NOVA"
    assert coin.functions.decimals().call() == 18
    assert coin.functions.artist().call() == artist
    assert coin.functions.totalSupply().call() == 10**24
    assert coin.functions.balanceOf(treasury).call() == 10**24


def test_an_artist_cannot_get_a_second_coin(chain, factory):
    artist = chain.accounts[1]
    chain.send(factory.functions.createCoin(artist, "Nova Coin", "NOVA", 1, artist))
    first = factory.functions.coinOf(artist).call()
    with chain.reverts(factory, "CoinAlreadyExists", artist, first):
        factory.functions.createCoin(artist, "Nova Two", "NOVA2", 1, artist).transact()
    chain.send(factory.functions.createCoin(chain.accounts[2], "Orbit", "ORB", 1, artist))
    assert factory.functions.coinCount().call() == 2


def test_only_the_platform_creates_coins(chain, factory):
    with chain.reverts(factory, "OwnableUnauthorizedAccount", chain.accounts[1]):
        factory.functions.createCoin(chain.accounts[1], "X", "X", 1, chain.accounts[1]).transact(
            {"from": chain.accounts[1]}
        )
    with chain.reverts(factory, "ZeroArtist"):
        factory.functions.createCoin(
            "0x0000000000000000000000000000000000000000", "X", "X", 1, chain.accounts[1]
        ).transact()


def test_the_coin_is_a_plain_erc20(chain, factory):
    artist, fan = chain.accounts[1], chain.accounts[3]
    chain.send(factory.functions.createCoin(artist, "Nova Coin", "NOVA", 1_000, artist))
    coin = chain.at("ArtistCoin", factory.functions.coinOf(artist).call())
    chain.send(coin.functions.transfer(fan, 400), sender=artist)
    assert coin.functions.balanceOf(fan).call() == 400
    with chain.reverts(coin, "ERC20InsufficientBalance", fan, 400, 401):
        coin.functions.transfer(artist, 401).transact({"from": fan})
