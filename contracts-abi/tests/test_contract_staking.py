import pytest

DURATION = 7 * 86_400
REWARD = 7 * 86_400 * 10**15  # a whole-number reward rate: 1e15 per second


@pytest.fixture
def setup(chain):
    owner, alice, bob = chain.accounts[:3]
    coin = chain.deploy("ArtistCoin", "Nova Coin", "NOVA", owner, 10**24, owner)
    reward = chain.deploy("ArtistCoin", "Test USD", "TUSD", owner, 10**24, owner)
    staking = chain.deploy("Staking", coin.address, reward.address, DURATION, owner)
    for fan in (alice, bob):
        chain.send(coin.functions.transfer(fan, 10**21))
        chain.send(coin.functions.approve(staking.address, 10**21), sender=fan)
    chain.send(reward.functions.approve(staking.address, 10**24))
    return coin, reward, staking


def test_stake_and_unstake_move_the_coin(chain, setup):
    coin, _, staking = setup
    alice = chain.accounts[1]
    receipt = chain.send(staking.functions.stake(300), sender=alice)
    assert chain.events(staking, "Staked", receipt)[0].args.amount == 300
    assert staking.functions.stakedOf(alice).call() == 300
    assert staking.functions.totalStaked().call() == 300
    chain.send(staking.functions.unstake(100), sender=alice)
    assert staking.functions.stakedOf(alice).call() == 200
    assert coin.functions.balanceOf(alice).call() == 10**21 - 200
    assert coin.functions.balanceOf(staking.address).call() == 200


def test_cannot_unstake_more_than_staked_or_zero(chain, setup):
    _, _, staking = setup
    alice = chain.accounts[1]
    chain.send(staking.functions.stake(300), sender=alice)
    with chain.reverts(staking, "InsufficientStake", 300, 301):
        staking.functions.unstake(301).transact({"from": alice})
    with chain.reverts(staking, "ZeroAmount"):
        staking.functions.stake(0).transact({"from": alice})


def test_rewards_accrue_in_proportion_to_stake(chain, setup):
    _, reward, staking = setup
    alice, bob = chain.accounts[1], chain.accounts[2]
    chain.send(staking.functions.stake(100 * 10**18), sender=alice)
    chain.send(staking.functions.stake(300 * 10**18), sender=bob)
    chain.send(staking.functions.notifyRewardAmount(REWARD))
    chain.advance(DURATION // 2)
    alice_half = staking.functions.earned(alice).call()
    bob_half = staking.functions.earned(bob).call()
    assert alice_half > 0
    assert abs(bob_half - 3 * alice_half) <= 3
    chain.advance(DURATION)  # past the period's end: nothing accrues after it
    for fan in (alice, bob):
        chain.send(staking.functions.claim(), sender=fan)
    alice_got = reward.functions.balanceOf(alice).call()
    bob_got = reward.functions.balanceOf(bob).call()
    assert alice_got + bob_got <= REWARD
    assert REWARD - (alice_got + bob_got) <= 10**6  # rounding dust only
    assert abs(bob_got - 3 * alice_got) <= 3
    assert staking.functions.earned(alice).call() == 0


def test_a_late_staker_earns_only_from_their_stake_on(chain, setup):
    _, reward, staking = setup
    alice, bob = chain.accounts[1], chain.accounts[2]
    chain.send(staking.functions.stake(10**18), sender=alice)
    chain.send(staking.functions.notifyRewardAmount(REWARD))
    start = chain.now()
    chain.advance(DURATION // 2 - 1)
    receipt = chain.send(staking.functions.stake(10**18), sender=bob)
    joined = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    chain.advance(DURATION)
    chain.send(staking.functions.claim(), sender=alice)
    chain.send(staking.functions.claim(), sender=bob)
    rate = REWARD // DURATION
    alone, shared = joined - start, start + DURATION - joined
    expected_alice = rate * alone + rate * shared // 2
    expected_bob = rate * shared // 2
    assert abs(reward.functions.balanceOf(alice).call() - expected_alice) <= 10
    assert abs(reward.functions.balanceOf(bob).call() - expected_bob) <= 10


def test_unstaking_keeps_earned_rewards_claimable(chain, setup):
    _, reward, staking = setup
    alice = chain.accounts[1]
    chain.send(staking.functions.stake(10**18), sender=alice)
    chain.send(staking.functions.notifyRewardAmount(REWARD))
    chain.advance(3600)
    chain.send(staking.functions.unstake(10**18), sender=alice)
    earned = staking.functions.earned(alice).call()
    assert earned > 0
    chain.advance(3600)
    assert staking.functions.earned(alice).call() == earned
    receipt = chain.send(staking.functions.claim(), sender=alice)
    assert chain.events(staking, "RewardPaid", receipt)[0].args.reward == earned
    assert reward.functions.balanceOf(alice).call() == earned


def test_only_the_owner_funds_rewards(chain, setup):
    _, _, staking = setup
    with chain.reverts(staking, "OwnableUnauthorizedAccount"):
        staking.functions.notifyRewardAmount(REWARD).transact({"from": chain.accounts[1]})
    with chain.reverts(staking, "ZeroAmount"):
        staking.functions.notifyRewardAmount(0).transact()
