"""A revenue distribution: who is owed how much of a payout, and the Merkle tree they claim by.

Two steps, both pure integer arithmetic in the token's base units (DevUSD/USDC: 6 decimals):

1. `share_of` turns a revenue figure and the holders' share of it (basis points) into the
   amount to distribute; `allocate` splits that amount pro rata to the shares each holder has.
   Every amount is rounded down, so the sum never exceeds what was funded; the few base units
   left over (`Allocation.remainder`, fewer than one per holder) stay in the treasury and are
   shown to users rather than handed to whoever rounding would favour.
2. `MerkleDistribution` publishes the amounts as one Merkle root for `RevenueDistributor`
   (contracts-abi/src/RevenueDistributor.sol); each holder claims with its leaf and proof.

The tree matches the contract exactly. `claim(distributionId, index, account, amount, proof)`
computes the leaf itself as `keccak256(abi.encodePacked(uint256 index, address account,
uint256 amount))`: 32 + 20 + 32 = 84 bytes hashed once (no double hashing: an internal node's
preimage is 64 bytes, so no pair of nodes can pass for a leaf). It then checks the proof with
OpenZeppelin 5's `MerkleProof.verifyCalldata`, which folds the proof into the leaf hashing
each pair sorted (`commutativeKeccak256`: the smaller 32-byte word first). A node without a
sibling at some level is carried up unchanged, so its proof simply has no element there; one
leaf is its own root with an empty proof.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from audifi_kit.errors import NotFound, ValidationFailed
from audifi_kit.fields import EvmAddress, check
from audifi_kit.values import invalid, whole_number
from eth_utils import keccak, to_checksum_address

MAX_BPS = 10_000
# The contract takes amounts and indexes as uint256; anything larger could not be claimed.
UINT256_MAX = 2**256 - 1


class NothingToDistribute(ValidationFailed):
    code = "NOTHING_TO_DISTRIBUTE"
    default_message = "No holder is owed anything: a distribution needs at least one claim"


class ClaimNotFound(NotFound):
    code = "CLAIM_NOT_FOUND"
    default_message = "This distribution holds no claim for that account"


def share_of(total_revenue: int, bps: int) -> int:
    """The part of `total_revenue` that `bps` basis points (0..10000) give the holders.

    Rounded down: the holders are never promised a base unit the revenue did not bring.
    """
    total_revenue = whole_number(
        total_revenue, field="totalRevenue", minimum=0, maximum=UINT256_MAX
    )
    bps = whole_number(bps, field="bps", minimum=0, maximum=MAX_BPS)
    return total_revenue * bps // MAX_BPS


@dataclass(frozen=True, slots=True)
class Allocation:
    """How `total` splits among the holders of `supply` shares.

    `amounts` names only the holders owed something (a holder whose share rounds down to
    nothing gets no leaf: a claim of 0 would cost gas for nothing), in holder order.
    """

    total: int
    supply: int
    amounts: Mapping[str, int] = field(default_factory=dict)

    @property
    def distributed(self) -> int:
        """What the holders can claim: the amount to fund the distribution with."""
        return sum(self.amounts.values())

    @property
    def remainder(self) -> int:
        """What rounding down left over: it stays in the treasury (fewer base units than there
        are holders with shares, as each loses less than one)."""
        return self.total - self.distributed


def allocate(total: int, holdings: Mapping[str, int]) -> Allocation:
    """Split `total` pro rata to `holdings` (holder -> shares held): each holder gets
    floor(total * held / supply), supply being all the shares in `holdings`.

    Rounding down is the only rounding that can never pay out more than `total`, whatever the
    holders; what it leaves is the allocation's `remainder`.
    """
    total = whole_number(total, field="total", minimum=0, maximum=UINT256_MAX)
    shares = {
        holder: whole_number(held, field="holdings", minimum=0, maximum=UINT256_MAX)
        for holder, held in holdings.items()
    }
    supply = sum(shares.values())
    if supply == 0:
        raise invalid("holdings", "At least one holder must hold shares")
    amounts = {}
    for holder in sorted(shares):
        amount = total * shares[holder] // supply
        if amount > 0:
            amounts[holder] = amount
    return Allocation(total=total, supply=supply, amounts=MappingProxyType(amounts))


@dataclass(frozen=True, slots=True)
class Leaf:
    """One claim as `RevenueDistributor.claim` takes it: its bit in the claimed bitmap
    (`index`), who receives the tokens (`account`, checksummed) and how many (`amount`)."""

    index: int
    account: str
    amount: int

    @property
    def digest(self) -> bytes:
        return leaf_hash(self.index, self.account, self.amount)


def leaf_hash(index: int, account: str, amount: int) -> bytes:
    """keccak256(abi.encodePacked(uint256 index, address account, uint256 amount)), as the
    contract computes the leaf it verifies."""
    return keccak(
        index.to_bytes(32, "big") + bytes.fromhex(account[2:]) + amount.to_bytes(32, "big")
    )


def _parent(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutativeKeccak256: the pair hashed smaller word first, so a proof
    needs no left/right flags."""
    return keccak(a + b) if a < b else keccak(b + a)


class MerkleDistribution:
    """The Merkle tree of one distribution: its `root` for `createDistribution`, and each
    holder's `Leaf` and proof for `claim`.

    Leaves are ordered by account address (as a 160-bit number) and indexed by position, so
    the same amounts always give the same root, whatever order or letter case they came in.
    """

    __slots__ = ("_index", "_layers", "leaves")

    def __init__(self, leaves: tuple[Leaf, ...]) -> None:
        if not leaves:
            raise NothingToDistribute()
        self.leaves = leaves
        self._index = {leaf.account.lower(): leaf.index for leaf in leaves}
        layers = [[leaf.digest for leaf in leaves]]
        while len(layers[-1]) > 1:
            below = layers[-1]
            layer = [_parent(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                layer.append(below[-1])  # no sibling: carried up, and no proof element here
            layers.append(layer)
        self._layers = layers

    @classmethod
    def build(cls, amounts: Mapping[str, int]) -> MerkleDistribution:
        """The tree of `amounts` (EVM address -> amount owed, e.g. `Allocation.amounts`).

        Zero amounts get no leaf; an address given twice (in two letter cases) is refused,
        since which of its amounts is meant cannot be told.
        """
        owed: dict[bytes, tuple[str, int]] = {}
        for address, amount in amounts.items():
            account = to_checksum_address(check(EvmAddress, address, field="account"))
            value = whole_number(amount, field="amount", minimum=0, maximum=UINT256_MAX)
            key = bytes.fromhex(account[2:])
            if key in owed:
                raise invalid("account", f"{account} is listed more than once")
            if value > 0:
                owed[key] = (account, value)
        ordered = (owed[key] for key in sorted(owed))
        return cls(tuple(Leaf(i, account, amount) for i, (account, amount) in enumerate(ordered)))

    @property
    def root(self) -> str:
        """The bytes32 root `createDistribution` publishes, as 0x hex."""
        return "0x" + self._layers[-1][0].hex()

    @property
    def total(self) -> int:
        """What all claims add up to: what the distribution must be funded with."""
        return sum(leaf.amount for leaf in self.leaves)

    def leaf(self, account: str) -> Leaf:
        """`account`'s claim (any letter case); ClaimNotFound if it is owed nothing here."""
        index = self._index.get(str(account).lower())
        if index is None:
            raise ClaimNotFound(details={"account": str(account)})
        return self.leaves[index]

    def proof(self, account: str) -> list[str]:
        """The proof `account` claims with (bytes32[] as 0x hex, leaf level first)."""
        return self.proof_for_index(self.leaf(account).index)

    def proof_for_index(self, index: int) -> list[str]:
        """The proof of the leaf at `index`: its sibling at each level that has one."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise ClaimNotFound(details={"index": str(index)})
        if not 0 <= index < len(self.leaves):
            raise ClaimNotFound(details={"index": index})
        path = []
        for layer in self._layers[:-1]:
            sibling = index ^ 1
            if sibling < len(layer):
                path.append("0x" + layer[sibling].hex())
            index //= 2
        return path


__all__ = [
    "MAX_BPS",
    "Allocation",
    "ClaimNotFound",
    "Leaf",
    "MerkleDistribution",
    "NothingToDistribute",
    "allocate",
    "leaf_hash",
    "share_of",
]
