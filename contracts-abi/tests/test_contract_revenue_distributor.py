import pytest

DAY = 86_400


@pytest.fixture
def setup(chain, merkle_tree):
    owner = chain.accounts[0]
    usdc = chain.deploy("ArtistCoin", "Test USD", "TUSD", owner, 10**24, owner)
    distributor = chain.deploy("RevenueDistributor", owner)
    holders = chain.accounts[1:6]
    entries = [(holder, (i + 1) * 1_000) for i, holder in enumerate(holders)]
    tree = merkle_tree(entries)
    total = sum(amount for _, amount in entries)
    chain.send(usdc.functions.approve(distributor.address, total))
    expires = chain.now() + 30 * DAY
    chain.send(distributor.functions.createDistribution(usdc.address, tree.root, total, expires))
    return usdc, distributor, tree, total


def test_each_holder_claims_their_amount_by_proof(chain, setup):
    usdc, distributor, tree, total = setup
    for index, (account, amount) in enumerate(tree.entries):
        receipt = chain.send(
            distributor.functions.claim(0, index, account, amount, tree.proof(index)),
            sender=chain.accounts[7],  # anyone may submit; the tokens go to the account
        )
        (event,) = chain.events(distributor, "Claimed", receipt)
        assert (event.args.index, event.args.account, event.args.amount) == (index, account, amount)
        assert usdc.functions.balanceOf(account).call() == amount
        assert distributor.functions.isClaimed(0, index).call()
    assert usdc.functions.balanceOf(distributor.address).call() == 0
    assert distributor.functions.distribution(0).call()[3] == total


def test_a_double_claim_is_refused(chain, setup):
    _, distributor, tree, _ = setup
    account, amount = tree.entries[2]
    chain.send(distributor.functions.claim(0, 2, account, amount, tree.proof(2)))
    with chain.reverts(distributor, "AlreadyClaimed", 0, 2):
        distributor.functions.claim(0, 2, account, amount, tree.proof(2)).transact()


def test_a_wrong_proof_or_inflated_amount_is_refused(chain, setup):
    _, distributor, tree, _ = setup
    account, amount = tree.entries[1]
    with chain.reverts(distributor, "InvalidProof"):
        distributor.functions.claim(0, 1, account, amount, tree.proof(0)).transact()
    with chain.reverts(distributor, "InvalidProof"):
        distributor.functions.claim(0, 1, account, amount + 1, tree.proof(1)).transact()
    with chain.reverts(distributor, "InvalidProof"):
        distributor.functions.claim(0, 1, chain.accounts[8], amount, tree.proof(1)).transact()
    assert not distributor.functions.isClaimed(0, 1).call()


def test_sweep_only_after_expiry_and_only_once(chain, setup):
    usdc, distributor, tree, total = setup
    account, amount = tree.entries[0]
    chain.send(distributor.functions.claim(0, 0, account, amount, tree.proof(0)))
    treasury = chain.accounts[9]
    with chain.reverts(distributor, "DistributionNotExpired"):
        distributor.functions.sweep(0, treasury).transact()
    chain.advance(31 * DAY)
    with chain.reverts(distributor, "OwnableUnauthorizedAccount"):
        distributor.functions.sweep(0, treasury).transact({"from": chain.accounts[1]})
    with chain.reverts(distributor, "DistributionExpired", 0):
        distributor.functions.claim(0, 1, *tree.entries[1], tree.proof(1)).transact()
    receipt = chain.send(distributor.functions.sweep(0, treasury))
    (event,) = chain.events(distributor, "Swept", receipt)
    assert event.args.amount == total - amount
    assert usdc.functions.balanceOf(treasury).call() == total - amount
    with chain.reverts(distributor, "AlreadySwept", 0):
        distributor.functions.sweep(0, treasury).transact()


def test_distributions_are_independent_periods(chain, setup, merkle_tree):
    usdc, distributor, first, _ = setup
    second = merkle_tree([(chain.accounts[1], 50), (chain.accounts[2], 70), (chain.accounts[3], 9)])
    chain.send(usdc.functions.approve(distributor.address, 129))
    chain.send(
        distributor.functions.createDistribution(usdc.address, second.root, 129, chain.now() + DAY)
    )
    assert distributor.functions.distributionCount().call() == 2
    chain.send(distributor.functions.claim(1, 0, chain.accounts[1], 50, second.proof(0)))
    assert not distributor.functions.isClaimed(0, 0).call()
    chain.send(distributor.functions.claim(0, 0, *first.entries[0], first.proof(0)))
    assert usdc.functions.balanceOf(chain.accounts[1]).call() == 50 + first.entries[0][1]
    with chain.reverts(distributor, "UnknownDistribution", 5):
        distributor.functions.claim(5, 0, chain.accounts[1], 50, second.proof(0)).transact()


def test_only_the_owner_creates_a_distribution(chain, setup):
    usdc, distributor, tree, _ = setup
    with chain.reverts(distributor, "OwnableUnauthorizedAccount"):
        distributor.functions.createDistribution(
            usdc.address, tree.root, 1, chain.now() + DAY
        ).transact({"from": chain.accounts[1]})
    with chain.reverts(distributor, "ExpiryInPast"):
        distributor.functions.createDistribution(usdc.address, tree.root, 1, chain.now()).transact()


def test_claimed_bitmap_spans_words(chain, merkle_tree):
    owner = chain.accounts[0]
    usdc = chain.deploy("ArtistCoin", "Test USD", "TUSD", owner, 10**24, owner)
    distributor = chain.deploy("RevenueDistributor", owner)
    entries = [(chain.accounts[i % 10], i + 1) for i in range(300)]
    tree = merkle_tree(entries)
    total = sum(a for _, a in entries)
    chain.send(usdc.functions.approve(distributor.address, total))
    chain.send(
        distributor.functions.createDistribution(usdc.address, tree.root, total, chain.now() + DAY)
    )
    for index in (0, 255, 256, 299):
        chain.send(distributor.functions.claim(0, index, *entries[index], tree.proof(index)))
    claimed = [i for i in range(300) if distributor.functions.isClaimed(0, i).call()]
    assert claimed == [0, 255, 256, 299]


def test_a_tree_promising_more_than_was_funded_cannot_drain_other_distributions(
    chain, setup, merkle_tree
):
    usdc, distributor, _, total = setup
    greedy = merkle_tree([(chain.accounts[1], 600), (chain.accounts[2], 600)])
    chain.send(usdc.functions.approve(distributor.address, 1_000))
    chain.send(
        distributor.functions.createDistribution(
            usdc.address, greedy.root, 1_000, chain.now() + DAY
        )
    )
    chain.send(distributor.functions.claim(1, 0, *greedy.entries[0], greedy.proof(0)))
    with chain.reverts(distributor, "ClaimExceedsTotal", 1, 1_000, 1_200):
        distributor.functions.claim(1, 1, *greedy.entries[1], greedy.proof(1)).transact()
    assert usdc.functions.balanceOf(distributor.address).call() == total + 400
