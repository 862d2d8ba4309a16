import pytest

MILESTONES = [300, 500, 200]


@pytest.fixture
def setup(chain):
    owner, approver, artist = chain.accounts[:3]
    usd = chain.deploy("ArtistCoin", "Test USD", "TUSD", owner, 10**24, owner)
    escrow = chain.deploy("MilestoneEscrow")
    for funder in chain.accounts[3:6]:
        chain.send(usd.functions.transfer(funder, 10_000))
        chain.send(usd.functions.approve(escrow.address, 10_000), sender=funder)
    receipt = chain.send(
        escrow.functions.createProject(usd.address, approver, artist, MILESTONES), sender=artist
    )
    (event,) = chain.events(escrow, "ProjectCreated", receipt)
    assert event.args.goal == sum(MILESTONES)
    return usd, escrow


def fund_fully(chain, escrow):
    chain.send(escrow.functions.fund(0, 600), sender=chain.accounts[3])
    chain.send(escrow.functions.fund(0, 400), sender=chain.accounts[4])


def test_funds_are_locked_up_to_the_goal(chain, setup):
    usd, escrow = setup
    fund_fully(chain, escrow)
    assert usd.functions.balanceOf(escrow.address).call() == 1_000
    assert escrow.functions.contributionOf(0, chain.accounts[3]).call() == 600
    with chain.reverts(escrow, "FundingExceedsGoal", 0, 1_000, 1_001):
        escrow.functions.fund(0, 1).transact({"from": chain.accounts[5]})
    assert escrow.functions.milestones(0).call() == MILESTONES


def test_the_approver_releases_milestones_in_order_to_the_artist(chain, setup):
    usd, escrow = setup
    approver, artist = chain.accounts[1], chain.accounts[2]
    fund_fully(chain, escrow)
    with chain.reverts(escrow, "WrongMilestone", 0, 0, 1):
        escrow.functions.releaseMilestone(0, 1).transact({"from": approver})
    receipt = chain.send(escrow.functions.releaseMilestone(0, 0), sender=approver)
    (event,) = chain.events(escrow, "MilestoneReleased", receipt)
    assert (event.args.milestone, event.args.amount) == (0, 300)
    assert usd.functions.balanceOf(artist).call() == 300
    with chain.reverts(escrow, "WrongMilestone", 0, 1, 0):
        escrow.functions.releaseMilestone(0, 0).transact({"from": approver})
    chain.send(escrow.functions.releaseMilestone(0, 1), sender=approver)
    receipt = chain.send(escrow.functions.releaseMilestone(0, 2), sender=approver)
    assert chain.events(escrow, "ProjectCompleted", receipt)
    assert usd.functions.balanceOf(artist).call() == 1_000
    assert escrow.functions.project(0).call()[3] == 2  # Status.Completed
    with chain.reverts(escrow, "ProjectNotActive", 0):
        escrow.functions.fund(0, 1).transact({"from": chain.accounts[5]})


def test_only_the_approver_releases(chain, setup):
    _, escrow = setup
    fund_fully(chain, escrow)
    for intruder in (chain.accounts[2], chain.accounts[3], chain.accounts[0]):
        with chain.reverts(escrow, "NotApprover", 0, intruder):
            escrow.functions.releaseMilestone(0, 0).transact({"from": intruder})


def test_a_milestone_needs_enough_funds(chain, setup):
    _, escrow = setup
    chain.send(escrow.functions.fund(0, 299), sender=chain.accounts[3])
    with chain.reverts(escrow, "InsufficientFunds", 0, 299, 300):
        escrow.functions.releaseMilestone(0, 0).transact({"from": chain.accounts[1]})


def test_after_a_cancel_funders_get_back_their_share_of_the_unreleased_rest(chain, setup):
    usd, escrow = setup
    approver = chain.accounts[1]
    alice, bob = chain.accounts[3], chain.accounts[4]
    fund_fully(chain, escrow)  # alice 600, bob 400
    chain.send(escrow.functions.releaseMilestone(0, 0), sender=approver)  # 300 out, 700 left
    with chain.reverts(escrow, "ProjectNotCancelled", 0):
        escrow.functions.refund(0).transact({"from": alice})
    with chain.reverts(escrow, "NotApprover", 0, alice):
        escrow.functions.cancel(0).transact({"from": alice})
    receipt = chain.send(escrow.functions.cancel(0), sender=approver)
    assert chain.events(escrow, "ProjectCancelled", receipt)[0].args.remaining == 700
    with chain.reverts(escrow, "ProjectNotActive", 0):
        escrow.functions.releaseMilestone(0, 1).transact({"from": approver})
    with chain.reverts(escrow, "ProjectNotActive", 0):
        escrow.functions.fund(0, 1).transact({"from": bob})
    chain.send(escrow.functions.refund(0), sender=alice)
    chain.send(escrow.functions.refund(0), sender=bob)
    assert usd.functions.balanceOf(alice).call() == 10_000 - 600 + 420
    assert usd.functions.balanceOf(bob).call() == 10_000 - 400 + 280
    assert usd.functions.balanceOf(escrow.address).call() == 0
    with chain.reverts(escrow, "NothingToRefund", 0, alice):
        escrow.functions.refund(0).transact({"from": alice})
    with chain.reverts(escrow, "NothingToRefund", 0, chain.accounts[5]):
        escrow.functions.refund(0).transact({"from": chain.accounts[5]})


def test_projects_are_validated(chain, setup):
    usd, escrow = setup
    a = chain.accounts[1]
    with chain.reverts(escrow, "NoMilestones"):
        escrow.functions.createProject(usd.address, a, a, []).transact()
    with chain.reverts(escrow, "ZeroAmount"):
        escrow.functions.createProject(usd.address, a, a, [1, 0]).transact()
    with chain.reverts(escrow, "ZeroAddress"):
        escrow.functions.createProject(
            usd.address, "0x0000000000000000000000000000000000000000", a, [1]
        ).transact()
    with chain.reverts(escrow, "UnknownProject", 9):
        escrow.functions.fund(9, 1).transact()
