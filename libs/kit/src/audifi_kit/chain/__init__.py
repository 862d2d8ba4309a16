"""The chain layer: an adapter on web3's AsyncWeb3, a payment check and a reorg-safe indexer."""

# First: web3, eth_account and eth_tester raise the recursion limit on import; this module
# imports what raises it and puts the limit back (see its docstring for why it matters).
from audifi_kit.chain import recursion  # noqa: F401  # isort: skip
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
