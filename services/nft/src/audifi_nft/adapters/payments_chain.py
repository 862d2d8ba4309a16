"""The `ChainPayments` port on the platform's chain: buyers pay the deployment's payment token
(DevUSD when embedded) to nft's operator address, checked by the kit's `check_payment`."""

from __future__ import annotations

from audifi_kit.chain.payments import ConfirmedPayment, check_payment
from audifi_kit.chain.platform import PlatformChain

from audifi_nft.ipos import PayTo


class ChainPaymentChecker:
    def __init__(self, chain: PlatformChain, *, confirmations: int = 1) -> None:
        self.chain = chain
        self.confirmations = max(1, confirmations)

    async def pay_to(self) -> PayTo:
        deployment = await self.chain.start()
        adapter = await self.chain.adapter("nft")
        return PayTo(
            chain_id=deployment.chain_id,
            token=deployment.payment_token,
            recipient=adapter.address,
            confirmations=self.confirmations,
        )

    async def check(self, tx_hash: str, amount: int) -> ConfirmedPayment:
        terms = await self.pay_to()
        adapter = await self.chain.adapter("nft")
        return await check_payment(
            adapter.w3,
            tx_hash,
            recipient=terms.recipient,
            amount=amount,
            token=terms.token,
            confirmations=self.confirmations,
        )
