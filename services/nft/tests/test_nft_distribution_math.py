"""A distribution pays each holder its rounded-down pro-rata share, never more than was funded,
and every holder can claim exactly that on the real RevenueDistributor with its proof.

The properties hold for any holdings hypothesis finds; the tree is checked by a verifier
written here from OpenZeppelin's MerkleProof (sorted-pair keccak) and a leaf encoded with
eth_abi's own `encode_packed`, not with the module's code; the last tests claim on the
embedded EVM with the platform's contracts deployed as the services deploy them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from audifi_kit.chain.adapter import ChainAdapter
from audifi_kit.chain.platform import PlatformChain
from audifi_kit.errors import BlockchainError, NotFound, ValidationFailed
from audifi_kit.settings import Settings
from audifi_nft.domain.distribution import (
    ClaimNotFound,
    MerkleDistribution,
    NothingToDistribute,
    allocate,
    share_of,
)
from eth_abi.packed import encode_packed
from eth_utils import keccak, to_checksum_address
from hypothesis import example, given
from hypothesis import strategies as st
from web3.contract import AsyncContract

UINT256_MAX = 2**256 - 1
addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
holdings_st = st.dictionaries(addresses, st.integers(0, 10**15), min_size=1, max_size=25).filter(
    lambda h: sum(h.values()) > 0
)
totals = st.integers(0, 10**18) | st.integers(0, UINT256_MAX)
owed_st = st.dictionaries(addresses, st.integers(1, UINT256_MAX), min_size=1, max_size=40)


def oz_verify(proof: list[str], root: str, leaf: bytes) -> bool:
    """OpenZeppelin 5 MerkleProof.verify: fold the proof in, each pair hashed sorted."""
    computed = leaf
    for element in proof:
        sibling = bytes.fromhex(element[2:])
        pair = computed + sibling if computed < sibling else sibling + computed
        computed = keccak(pair)
    return "0x" + computed.hex() == root


def claim_leaf(index: int, account: str, amount: int) -> bytes:
    """The leaf RevenueDistributor.claim computes: keccak256(abi.encodePacked(...))."""
    return keccak(encode_packed(["uint256", "address", "uint256"], [index, account, amount]))


# -- allocate ------------------------------------------------------------------------------


@given(total=totals, holdings=holdings_st)
def test_every_unit_is_either_allocated_or_left_in_the_treasury(
    total: int, holdings: dict[str, int]
) -> None:
    allocation = allocate(total, holdings)
    assert sum(allocation.amounts.values()) + allocation.remainder == total
    assert allocation.distributed + allocation.remainder == total
    assert all(amount > 0 for amount in allocation.amounts.values())
    assert allocation.remainder >= 0


@given(total=totals, holdings=holdings_st)
def test_each_holder_gets_its_share_rounded_down(total: int, holdings: dict[str, int]) -> None:
    allocation = allocate(total, holdings)
    supply = sum(holdings.values())
    assert allocation.supply == supply
    for holder, held in holdings.items():
        assert allocation.amounts.get(holder, 0) == total * held // supply
    assert set(allocation.amounts) == {h for h, held in holdings.items() if total * held >= supply}


@given(total=totals, holdings=holdings_st)
def test_the_remainder_is_less_than_one_unit_per_holder_with_shares(
    total: int, holdings: dict[str, int]
) -> None:
    """Each holder with shares loses its fraction (total * held mod supply) / supply < 1, and
    those fractions add up to the remainder, so it is below the count of such holders."""
    allocation = allocate(total, holdings)
    holders_with_shares = sum(1 for held in holdings.values() if held > 0)
    assert allocation.remainder < holders_with_shares
    fractions = sum(total * held % allocation.supply for held in holdings.values())
    assert fractions == allocation.remainder * allocation.supply


@given(total=totals, holdings=holdings_st)
def test_more_shares_never_means_less_money(total: int, holdings: dict[str, int]) -> None:
    allocation = allocate(total, holdings)
    by_shares = sorted(holdings, key=lambda holder: holdings[holder])
    paid = [allocation.amounts.get(holder, 0) for holder in by_shares]
    assert paid == sorted(paid)


def test_three_equal_holders_of_a_hundred_get_33_and_one_stays_in_the_treasury() -> None:
    allocation = allocate(100, {"a": 1, "b": 1, "c": 1})
    assert dict(allocation.amounts) == {"a": 33, "b": 33, "c": 33}
    assert (allocation.distributed, allocation.remainder) == (99, 1)


def test_a_holder_whose_share_rounds_to_nothing_gets_no_claim() -> None:
    allocation = allocate(10, {"whale": 999, "minnow": 1, "gone": 0})
    assert dict(allocation.amounts) == {"whale": 9}
    assert allocation.remainder == 1


@pytest.mark.parametrize(
    ("total", "holdings"),
    [
        (-1, {"a": 1}),
        (1.0, {"a": 1}),
        (True, {"a": 1}),
        (UINT256_MAX + 1, {"a": 1}),
        (10, {"a": -1, "b": 2}),
        (10, {"a": 0.5}),
        (10, {"a": 0, "b": 0}),
        (10, {}),
    ],
)
def test_a_negative_or_inexact_figure_or_no_shares_at_all_is_refused(
    total: object, holdings: dict[str, object]
) -> None:
    with pytest.raises(ValidationFailed):
        allocate(total, holdings)  # type: ignore[arg-type]


# -- share_of ------------------------------------------------------------------------------


def test_the_holders_share_of_revenue_is_rounded_down() -> None:
    assert share_of(1_000_000, 2_500) == 250_000
    assert share_of(999, 3_333) == 332  # 332.9667
    assert share_of(123, 10_000) == 123
    assert share_of(123, 0) == 0


@given(revenue=st.integers(0, UINT256_MAX), bps=st.integers(0, 10_000))
def test_the_share_never_exceeds_the_revenue(revenue: int, bps: int) -> None:
    amount = share_of(revenue, bps)
    assert 0 <= amount <= revenue
    assert amount * 10_000 <= revenue * bps < (amount + 1) * 10_000


@pytest.mark.parametrize(("revenue", "bps"), [(-1, 100), (100, -1), (100, 10_001), (1.5, 100)])
def test_a_share_outside_0_to_10000_bps_or_negative_revenue_is_refused(
    revenue: object, bps: object
) -> None:
    with pytest.raises(ValidationFailed):
        share_of(revenue, bps)  # type: ignore[arg-type]


# -- the Merkle tree -----------------------------------------------------------------------


@given(owed=owed_st)
@example(owed={to_checksum_address(b"\x01" * 20): 5})
def test_every_leaf_proves_against_the_root_and_only_with_its_own_amount(
    owed: dict[str, int],
) -> None:
    tree = MerkleDistribution.build(owed)
    assert [leaf.index for leaf in tree.leaves] == list(range(len(owed)))
    assert {leaf.account: leaf.amount for leaf in tree.leaves} == owed
    assert tree.total == sum(owed.values())
    for leaf in tree.leaves:
        proof = tree.proof(leaf.account)
        assert proof == tree.proof_for_index(leaf.index)
        assert oz_verify(proof, tree.root, claim_leaf(leaf.index, leaf.account, leaf.amount))
        inflated = (leaf.amount + 1) % (UINT256_MAX + 1)
        assert not oz_verify(proof, tree.root, claim_leaf(leaf.index, leaf.account, inflated))
        for other in tree.leaves:
            if other.amount != leaf.amount:
                wrong = claim_leaf(leaf.index, leaf.account, other.amount)
                assert not oz_verify(proof, tree.root, wrong)
                break


@given(owed=owed_st, data=st.data())
def test_the_root_depends_on_the_amounts_not_on_their_order_or_letter_case(
    owed: dict[str, int], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(list(owed.items())))
    recased = {account.lower(): amount for account, amount in shuffled}
    assert MerkleDistribution.build(recased).root == MerkleDistribution.build(owed).root
    accounts = [leaf.account for leaf in MerkleDistribution.build(recased).leaves]
    assert accounts == sorted(owed, key=lambda a: int(a, 16))


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 8, 9])
def test_trees_of_any_size_prove_every_leaf(count: int) -> None:
    owed = {to_checksum_address(i.to_bytes(20, "big")): 1_000 * i for i in range(1, count + 1)}
    tree = MerkleDistribution.build(owed)
    for leaf in tree.leaves:
        assert oz_verify(tree.proof_for_index(leaf.index), tree.root, leaf.digest)
    if count == 1:
        assert tree.proof_for_index(0) == []
        assert tree.root == "0x" + claim_leaf(0, tree.leaves[0].account, 1_000).hex()


def test_holders_owed_nothing_get_no_leaf_and_an_empty_tree_is_refused() -> None:
    a, b = (to_checksum_address(bytes([i]) * 20) for i in (1, 2))
    assert [leaf.account for leaf in MerkleDistribution.build({a: 0, b: 3}).leaves] == [b]
    with pytest.raises(NothingToDistribute):
        MerkleDistribution.build({a: 0})
    with pytest.raises(NothingToDistribute):
        MerkleDistribution.build(allocate(0, {a: 5}).amounts)


def test_an_account_listed_twice_or_a_bad_address_or_amount_is_refused() -> None:
    a = to_checksum_address(b"\xab" * 20)
    with pytest.raises(ValidationFailed):
        MerkleDistribution.build({a: 1, a.lower(): 2})
    with pytest.raises(ValidationFailed):
        MerkleDistribution.build({"0x1234": 1})
    with pytest.raises(ValidationFailed):
        MerkleDistribution.build({a: -1})
    with pytest.raises(ValidationFailed):
        MerkleDistribution.build({a: UINT256_MAX + 1})


def test_an_account_without_a_claim_has_no_proof() -> None:
    a, b = (to_checksum_address(bytes([i]) * 20) for i in (1, 2))
    tree = MerkleDistribution.build({a: 10})
    assert tree.proof(a.lower()) == []
    with pytest.raises(ClaimNotFound) as refused:
        tree.proof(b)
    assert isinstance(refused.value, NotFound)
    with pytest.raises(ClaimNotFound):
        tree.proof_for_index(1)


# -- on the real RevenueDistributor --------------------------------------------------------

DAY = 86_400
HOLDERS = [to_checksum_address(keccak(text=f"holder {i}")[:20]) for i in range(5)]


@dataclass
class Funded:
    """A distribution created on chain from the tree, and who does what there."""

    tree: MerkleDistribution
    treasury: ChainAdapter  # nft: owns the distributor and funds it
    anyone: ChainAdapter  # coin's account: not a holder, submits claims for them
    distributor: AsyncContract
    token: AsyncContract

    async def balance(self, account: str) -> int:
        return await self.anyone.call(self.token, "balanceOf", account)

    async def claim(self, index: int, amount: int, proof: list[str]) -> None:
        account = self.tree.leaves[index].account
        await self.anyone.transact(self.distributor, "claim", 0, index, account, amount, proof)


@pytest.fixture
async def funded() -> AsyncIterator[Funded]:
    """The platform deployed on the embedded EVM; nft funds a distribution of 1 000 001 base
    units (a little over 1 dUSD) to five holders of 25 shares, as allocated here."""
    chain = PlatformChain(Settings())
    try:
        deployment = await chain.start()
        treasury, minter, anyone = [await chain.adapter(s) for s in ("nft", "payment", "coin")]
        holdings = dict(zip(HOLDERS, [7, 3, 1, 13, 1], strict=True))
        allocation = allocate(1_000_001, holdings)
        tree = MerkleDistribution.build(allocation.amounts)
        assert tree.total == allocation.distributed
        token = await chain.contract("payment", "DevUSD")
        distributor = await chain.contract("nft", "RevenueDistributor")
        # bound to the claimant's adapter too, so its reverts decode to the contract's errors
        claimed_through = await chain.contract("coin", "RevenueDistributor")
        await minter.transact(token, "mint", treasury.address, allocation.total)
        await treasury.transact(token, "approve", distributor.address, allocation.distributed)
        now = (await treasury.w3.eth.get_block("latest"))["timestamp"]
        await treasury.transact(
            distributor,
            "createDistribution",
            deployment.payment_token,
            tree.root,
            allocation.distributed,
            now + 30 * DAY,
        )
        assert await treasury.call(token, "balanceOf", treasury.address) == allocation.remainder
        yield Funded(tree, treasury, anyone, claimed_through, token)
    finally:
        await chain.close()


async def test_each_holder_receives_exactly_its_amount_whoever_sends_the_claim(
    funded: Funded,
) -> None:
    tree = funded.tree
    assert len(tree.leaves) == 5
    for leaf in tree.leaves:
        before = await funded.balance(leaf.account)
        await funded.claim(leaf.index, leaf.amount, tree.proof(leaf.account))
        assert await funded.balance(leaf.account) == before + leaf.amount
    assert await funded.balance(funded.distributor.address) == 0
    assert await funded.balance(funded.anyone.address) == 0
    # the remainder never left the treasury
    assert await funded.balance(funded.treasury.address) == 1_000_001 - tree.total


async def test_a_claim_with_a_wrong_amount_or_claimed_twice_is_refused(funded: Funded) -> None:
    leaf = funded.tree.leaves[2]
    proof = funded.tree.proof_for_index(leaf.index)
    with pytest.raises(BlockchainError) as refused:
        await funded.claim(leaf.index, leaf.amount + 1, proof)
    assert refused.value.details["error"] == "InvalidProof"
    assert await funded.balance(leaf.account) == 0

    await funded.claim(leaf.index, leaf.amount, proof)
    with pytest.raises(BlockchainError) as again:
        await funded.claim(leaf.index, leaf.amount, proof)
    assert again.value.details["error"] == "AlreadyClaimed"
    assert await funded.balance(leaf.account) == leaf.amount
