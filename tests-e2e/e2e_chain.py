"""The development chain node as a wallet or a dApp reaches it in the end-to-end tests
(JSON-RPC, the deployment's addresses, transactions signed with the test's own keys), and
accounts signed in at auth with a wallet's signature."""

from __future__ import annotations

from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from platform_processes import Platform


def genesis_key(n: int) -> str:
    """eth-tester's funded genesis accounts have keys 1, 2, 3...; 1-9 sign for the platform's
    services (the deployer, nft, coin, payment...), 10 is nobody's: this test's funder."""
    return "0x" + n.to_bytes(32, "big").hex()


FUNDER = genesis_key(10)
DEV_USD_OWNER = genesis_key(4)  # payment's account, DevUSD's owner in the development chain


class Chain:
    """The development chain node as a wallet reaches it: JSON-RPC, the deployment's
    addresses, transactions signed with the test's own keys."""

    def __init__(self, platform: Platform) -> None:
        from audifi_kit.chain.platform import artifact
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(platform.url("chain"), request_kwargs={"timeout": 30}))
        deployment = httpx.get(f"{platform.url('chain')}/deployment").json()
        addresses = {n: c["address"] for n, c in deployment["contracts"].items()}
        # the payment token: test USDC (DevUSD) on the development chain
        self.usdc = self.token = self.w3.eth.contract(
            address=deployment["paymentToken"], abi=artifact("DevUSD").abi
        )
        self.lottery = self.w3.eth.contract(
            address=addresses["Lottery"], abi=artifact("Lottery").abi
        )
        self.shares = self.w3.eth.contract(
            address=addresses["MasterShares"], abi=artifact("MasterShares").abi
        )
        self.coin_abi = artifact("ArtistCoin").abi

    def coin(self, address: str) -> Any:
        return self.w3.eth.contract(address=address, abi=self.coin_abi)

    def send(self, key: str, call: Any) -> Any:
        """A contract call signed by `key`, mined; its receipt."""
        account = Account.from_key(key)
        return self._signed(account, call.build_transaction(self._filled(account, {})))

    def pay(self, key: str, to: str, value: int) -> Any:
        """Native coin from `key`'s account to `to`, mined; its receipt."""
        account = Account.from_key(key)
        return self._signed(account, self._filled(account, {"to": to, "value": value}))

    def make_block(self) -> None:
        """One more block, as any wallet's transaction makes one."""
        self.pay(FUNDER, Account.from_key(FUNDER).address, 0)

    def sign_prepared(self, key: str, prepared: list[dict[str, Any]]) -> list[Any]:
        """What a wallet does with the service's prepared transactions, in order: keeps `to`,
        `data`, `value` and `gas` (estimating it only where the service could not: after an
        approval not yet mined), fills in nonce, chain id and gas price, signs and sends."""
        account = Account.from_key(key)
        receipts = []
        for p in prepared:
            assert (p["from"], p["chainId"]) == (account.address, self.w3.eth.chain_id), p
            tx = self._filled(account, {"to": p["to"], "data": p["data"], "value": int(p["value"])})
            tx["gas"] = int(p["gas"]) if p["gas"] is not None else self.w3.eth.estimate_gas(tx)
            receipts.append(self._signed(account, tx))
        return receipts

    def _filled(self, account: Any, tx: dict[str, Any]) -> dict[str, Any]:
        return {
            **tx,
            "from": account.address,
            "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": self.w3.eth.chain_id,
            "gasPrice": self.w3.eth.gas_price,
        }

    def _signed(self, account: Any, tx: dict[str, Any]) -> Any:
        if "gas" not in tx:
            tx["gas"] = self.w3.eth.estimate_gas(tx)
        signed = account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        assert receipt["status"] == 1, receipt
        return receipt


def new_wallet(chain: Chain, usdc: int) -> tuple[str, str]:
    """A fresh wallet (its key and address): gas from the funder, `usdc` test USDC minted by
    DevUSD's owner."""
    account = Account.create()
    chain.pay(FUNDER, account.address, 10**17)
    if usdc:
        chain.send(DEV_USD_OWNER, chain.usdc.functions.mint(account.address, usdc))
    return account.key.to_0x_hex(), account.address


def sign_in_with_wallet(platform: Platform, key: str) -> tuple[dict[str, str], str]:
    """Signed in at auth with the wallet's signature: the bearer headers and the account id."""
    wallet = Account.from_key(key)
    challenge = httpx.post(
        f"{platform.gateway}/auth/request-challenge", json={"walletAddress": wallet.address}
    ).json()["challenge"]
    signature = wallet.sign_message(encode_defunct(text=challenge)).signature.hex()
    signed_in = httpx.post(
        f"{platform.gateway}/auth/verify-signature",
        json={"walletAddress": wallet.address, "signature": signature, "challenge": challenge},
    )
    assert signed_in.status_code == 200, signed_in.text
    headers = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    me = httpx.get(f"{platform.gateway}/users/me", headers=headers)
    assert me.status_code == 200, me.text
    return headers, me.json()["id"]


def error_of(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["code"]
