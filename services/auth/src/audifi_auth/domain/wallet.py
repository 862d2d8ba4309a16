"""Proving control of a wallet: a challenge to sign, and the check of the signature.

EVM addresses (0x...) sign an EIP-4361 "Sign-In with Ethereum" message with `personal_sign`
(EIP-191); the signer is recovered from the signature and compared with the address. Solana
addresses are base58 ed25519 public keys; they sign the message's UTF-8 bytes and the signature
(base58 or base64) is checked against the key. Nonces are single-use and expire: the challenge
aggregate remembers only the hash of the message it issued and a digest of the address.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import base58
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from eth_utils import is_hex_address, to_checksum_address
from eventsourcing.domain import Aggregate, event
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

EVM = "evm"
SOLANA = "solana"
_NONCE_LINE = re.compile(r"^Nonce: ([A-Za-z0-9]{8,})$", re.MULTILINE)


class NotAWallet(ValueError):
    """Neither a 0x EVM address nor a base58 ed25519 (Solana) public key."""


class ChallengeRefused(Exception):
    """Unknown, expired, already answered, or not issued for this wallet."""


@dataclass(frozen=True, slots=True)
class Wallet:
    address: str  # EVM: EIP-55 checksummed; Solana: base58 as given
    chain: str

    @property
    def key(self) -> str:
        """The form uniqueness is decided on."""
        return self.address.lower() if self.chain == EVM else self.address


def parse_wallet(address: str) -> Wallet:
    address = address.strip()
    if address.startswith("0x"):
        if not is_hex_address(address):
            raise NotAWallet(address)
        return Wallet(to_checksum_address(address), EVM)
    try:
        raw = base58.b58decode(address)
    except ValueError:
        raise NotAWallet(address) from None
    if len(raw) != 32:
        raise NotAWallet(address)
    return Wallet(address, SOLANA)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SignInRequest:
    """What the challenge says: who asks whom to sign, and until when."""

    domain: str
    uri: str
    chain_id: int
    statement: str

    def message(self, wallet: Wallet, nonce: str, issued_at: datetime, expires_at: datetime) -> str:
        if wallet.chain == EVM:
            # EIP-4361 message format, field by field.
            return (
                f"{self.domain} wants you to sign in with your Ethereum account:\n"
                f"{wallet.address}\n"
                f"\n"
                f"{self.statement}\n"
                f"\n"
                f"URI: {self.uri}\n"
                f"Version: 1\n"
                f"Chain ID: {self.chain_id}\n"
                f"Nonce: {nonce}\n"
                f"Issued At: {_iso(issued_at)}\n"
                f"Expiration Time: {_iso(expires_at)}"
            )
        return (
            f"{self.domain} wants you to sign in with your Solana account:\n"
            f"{wallet.address}\n"
            f"\n"
            f"{self.statement}\n"
            f"\n"
            f"URI: {self.uri}\n"
            f"Nonce: {nonce}\n"
            f"Issued At: {_iso(issued_at)}\n"
            f"Expiration Time: {_iso(expires_at)}"
        )


def nonce_of(message: str) -> str:
    found = _NONCE_LINE.search(message)
    if found is None:
        raise ChallengeRefused("no nonce")
    return found[1]


def _signature_bytes(signature: str) -> bytes:
    signature = signature.strip()
    try:
        raw = base58.b58decode(signature)
        if len(raw) == 64:
            return raw
    except ValueError:
        pass
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return b""


def signed_by(wallet: Wallet, message: str, signature: str) -> bool:
    """Whether `signature` over `message` was made by `wallet`'s key."""
    if wallet.chain == EVM:
        try:
            signer = EthAccount.recover_message(encode_defunct(text=message), signature=signature)
        except Exception:  # malformed signature: eth-account raises several kinds
            return False
        return bool(signer == wallet.address)
    raw = _signature_bytes(signature)
    if len(raw) != 64:
        return False
    try:
        VerifyKey(base58.b58decode(wallet.address)).verify(message.encode(), raw)
    except (BadSignatureError, ValueError):
        return False
    return True


class WalletChallenge(Aggregate):
    """A nonce handed to a wallet to sign; answered once, before it expires."""

    @event("Issued")
    def __init__(
        self, id: UUID, wallet_digest: str, message_hash: str, expires_at: datetime
    ) -> None:
        self.wallet_digest = wallet_digest
        self.message_hash = message_hash
        self.expires_at = expires_at
        self.answered_at: datetime | None = None

    def answer(self, wallet_digest: str, message_hash: str, now: datetime) -> None:
        if (
            self.answered_at is not None
            or now >= self.expires_at
            or wallet_digest != self.wallet_digest
            or message_hash != self.message_hash
        ):
            raise ChallengeRefused(str(self.id))
        self._answered(answered_at=now)

    @event("Answered")
    def _answered(self, answered_at: datetime) -> None:
        self.answered_at = answered_at
