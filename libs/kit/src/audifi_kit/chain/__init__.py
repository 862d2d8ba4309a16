"""The chain layer: an adapter on web3's AsyncWeb3, a payment check and a reorg-safe indexer."""

from audifi_kit.chain.adapter import ChainAdapter
from audifi_kit.chain.artifacts import Artifact
from audifi_kit.chain.embedded import EmbeddedChain
from audifi_kit.chain.indexer import ChainIndexer, ChainLog, LogHandler, StepResult
from audifi_kit.chain.payments import ConfirmedPayment, check_payment

__all__ = [
    "Artifact",
    "ChainAdapter",
    "ChainIndexer",
    "ChainLog",
    "ConfirmedPayment",
    "EmbeddedChain",
    "LogHandler",
    "StepResult",
    "check_payment",
]
