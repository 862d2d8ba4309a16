"""The `LotteryChain` port on the platform's chain: the Lottery contract, operated by coin's
account (the treasury: buyers pay it, it issues their tickets and funds the pot), and the
payment and burn checks against the chain's receipts.

Idempotence on chain: `issueTickets` takes the claim's transaction hash as its ref and the
contract issues a ref once, so a retried issue (the service crashed after sending it) finds
the `TicketsIssued` log of the first instead of issuing twice; a round's `openRound` is found
again by its seed's commitment; `close` and `reveal` read what an earlier attempt did.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from audifi_kit.chain.payments import (
    PaymentFailed,
    PaymentNotConfirmed,
    PaymentNotFound,
    check_payment,
)
from audifi_kit.chain.platform import PlatformChain, artifact
from audifi_kit.errors import BlockchainError
from eth_abi import decode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3.logs import DISCARD

from audifi_coin.domain.lottery import USDC, RoundNotOver, RoundTerms
from audifi_coin.lottery import (
    BurnNotYours,
    Burns,
    Closed,
    Drawn,
    DrawNotReady,
    Issued,
    NoBurn,
    Opened,
    Payment,
    PayTo,
)

OPERATOR = "coin"
ZERO_ADDRESS = "0x" + "00" * 20
TRANSFER_SINGLE = keccak(text="TransferSingle(address,address,address,uint256,uint256)")
TRANSFER_BATCH = keccak(text="TransferBatch(address,address,address,uint256[],uint256[])")
MAX_ALLOWANCE = 2**256 - 1
# issueTickets' gas, given rather than estimated: the estimate cost as much as the send on the
# embedded chain (lottery_bench), and a ref found unused just before cannot revert on it. The
# first issue of a round writes every slot fresh with a pot transfer: about 200,000.
ISSUE_GAS = 400_000


def master_token_id(master_id: str) -> int:
    """A master's MasterShares token id: its UUID as an integer (as nft mints them)."""
    return UUID(master_id).int


class ChainLottery:
    def __init__(self, chain: PlatformChain, *, confirmations: int = 1) -> None:
        self.chain = chain
        self.confirmations = max(1, confirmations)
        self._lock = asyncio.Lock()  # the operator's sends one at a time: reads stay exact
        self._allowance = 0  # what the Lottery may pull of the operator's token, as last read

    async def _parts(self):  # type: ignore[no-untyped-def]
        adapter = await self.chain.adapter(OPERATOR)
        lottery = await self.chain.contract(OPERATOR, "Lottery")
        return adapter, lottery

    async def _token(self):  # type: ignore[no-untyped-def]
        adapter = await self.chain.adapter(OPERATOR)
        deployment = await self.chain.start()
        # The payment token (DevUSD when embedded, USDC on a real chain): an ERC-20's ABI.
        return adapter.contract(artifact("DevUSD", self.chain.settings), deployment.payment_token)

    async def pay_to(self) -> PayTo:
        deployment = await self.chain.start()
        adapter, lottery = await self._parts()
        return PayTo(
            chain_id=deployment.chain_id,
            lottery=lottery.address,
            treasury=adapter.address,
            token=deployment.payment_token,
            confirmations=self.confirmations,
        )

    # -- rounds --------------------------------------------------------------------------------

    async def open_round(self, seed_hash: bytes, terms: RoundTerms) -> Opened:
        adapter, lottery = await self._parts()
        async with self._lock:
            receipt = await adapter.transact(
                lottery,
                "openRound",
                seed_hash,
                terms.ticket_price,
                master_token_id(terms.burn_master_id) if terms.burn_master_id else 0,
                terms.shares_per_ticket,
                int(terms.starts_at.timestamp()),
                int(terms.ends_at.timestamp()),
                terms.max_per_wallet,
            )
        (opened,) = lottery.events.RoundOpened().process_receipt(receipt, errors=DISCARD)
        return Opened(
            chain_round_id=int(opened["args"]["roundId"]),
            pot=int(opened["args"]["pot"]),
            tx_hash=receipt["transactionHash"].to_0x_hex(),
        )

    async def find_round(self, seed_hash: bytes) -> Opened | None:
        adapter, lottery = await self._parts()
        count = int(await adapter.call(lottery, "roundCount"))
        for i in range(count - 1, -1, -1):
            r = await adapter.call(lottery, "round", i)
            if bytes(r[0]) == seed_hash:
                logs = await lottery.events.RoundOpened().get_logs(
                    argument_filters={"roundId": i}, from_block=await self._start_block()
                )
                tx = logs[0]["transactionHash"].to_0x_hex() if logs else "0x" + "00" * 32
                pot = int(logs[0]["args"]["pot"]) if logs else int(r[10])
                return Opened(chain_round_id=i, pot=pot, tx_hash=tx)
        return None

    async def _start_block(self) -> int:
        deployment = await self.chain.start()
        return deployment.contracts["Lottery"].block

    # -- checks --------------------------------------------------------------------------------

    async def check_payment(self, tx_hash: str, *, method: str, amount: int) -> Payment:
        terms = await self.pay_to()
        adapter = await self.chain.adapter(OPERATOR)
        paid = await check_payment(
            adapter.w3,
            tx_hash,
            recipient=terms.treasury,
            amount=amount,
            token=terms.token if method == USDC else None,
            confirmations=self.confirmations,
        )
        try:
            block = await adapter.w3.eth.get_block(paid.block_number)
        except Exception as exc:
            raise BlockchainError(
                "The payment's block could not be read", details={"txHash": tx_hash}
            ) from exc
        return Payment(
            payer=paid.payer,
            amount=paid.amount,
            block_time=datetime.fromtimestamp(int(block["timestamp"]), UTC),
        )

    async def check_burns(self, tx_hashes: list[str], *, wallet: str, master_id: str) -> Burns:
        """Shares of `master_id` that `wallet` burnt in these transactions (MasterShares'
        transfers to the zero address from the wallet), each confirmed. Burns made through the
        Lottery's own `burnForTickets` were ticketed there: refused here."""
        adapter = await self.chain.adapter(OPERATOR)
        deployment = await self.chain.start()
        shares = to_checksum_address(deployment.address("MasterShares"))
        lottery = to_checksum_address(deployment.address("Lottery"))
        token_id = master_token_id(master_id)
        head = int(await adapter.w3.eth.block_number)
        burnt = 0
        times: list[datetime] = []
        for tx_hash in tx_hashes:
            receipt = await adapter.receipt(tx_hash, action="check burn")
            if receipt is None:
                raise PaymentNotFound(details={"txHash": tx_hash})
            if receipt["status"] != 1:
                raise PaymentFailed(details={"txHash": tx_hash})
            depth = head - int(receipt["blockNumber"]) + 1
            if depth < self.confirmations:
                raise PaymentNotConfirmed(
                    details={
                        "txHash": tx_hash,
                        "confirmations": depth,
                        "required": self.confirmations,
                    }
                )
            if any(to_checksum_address(log["address"]) == lottery for log in receipt["logs"]):
                raise NoBurn(
                    "These shares were burnt through the Lottery, which issued their tickets",
                    details={"txHash": tx_hash},
                )
            found = [b for b in _burns(receipt["logs"], shares) if b[1] == token_id]
            if not found:
                raise NoBurn(details={"txHash": tx_hash})
            if any(holder != to_checksum_address(wallet) for holder, _, _ in found):
                raise BurnNotYours(details={"txHash": tx_hash})
            burnt += sum(value for _, _, value in found)
            block = await adapter.w3.eth.get_block(int(receipt["blockNumber"]))
            times.append(datetime.fromtimestamp(int(block["timestamp"]), UTC))
        return Burns(burnt, min(times), max(times))

    # -- tickets, the pot and the draw ---------------------------------------------------------

    async def issue(
        self, chain_round_id: int, wallet: str, count: int, pot_added: int, ref: str
    ) -> Issued:
        adapter, lottery = await self._parts()
        ref_bytes = HexBytes(ref)
        async with self._lock:
            if not await adapter.call(lottery, "refUsed", ref_bytes):
                if pot_added:
                    await self._allow(pot_added)
                try:
                    receipt = await adapter.transact(
                        lottery,
                        "issueTickets",
                        chain_round_id,
                        wallet,
                        count,
                        pot_added,
                        ref_bytes,
                        gas=ISSUE_GAS,
                    )
                except BlockchainError as exc:
                    if exc.details.get("error") != "RefUsed":
                        raise
                else:
                    (log,) = lottery.events.TicketsIssued().process_receipt(receipt, errors=DISCARD)
                    return _issued(log)
        logs = await lottery.events.TicketsIssued().get_logs(
            argument_filters={"roundId": chain_round_id}, from_block=await self._start_block()
        )
        for log in logs:
            if HexBytes(log["args"]["ref"]) == ref_bytes:
                return _issued(log)
        raise BlockchainError(
            "The contract says this ref was issued, but no log of it was found",
            details={"ref": ref, "roundId": chain_round_id},
        )

    async def _allow(self, amount: int) -> None:
        """The Lottery may pull the operator's payment token: approved once, for good."""
        if self._allowance >= amount:
            return
        adapter, lottery = await self._parts()
        token = await self._token()
        self._allowance = int(
            await adapter.call(token, "allowance", adapter.address, lottery.address)
        )
        if self._allowance < amount:
            await adapter.transact(token, "approve", lottery.address, MAX_ALLOWANCE)
            self._allowance = MAX_ALLOWANCE

    async def add_to_pot(self, chain_round_id: int, amount: int) -> str:
        adapter, lottery = await self._parts()
        async with self._lock:
            await self._allow(amount)
            receipt = await adapter.transact(lottery, "addToPot", chain_round_id, amount)
        return receipt["transactionHash"].to_0x_hex()  # type: ignore[no-any-return]

    async def _nudge(self, blocks: int = 1) -> bool:
        """Make `blocks` empty blocks on a development chain (the embedded EVM, or `audifi
        chain node` and other nodes that mine only on transactions and answer `evm_mine`),
        where nobody else may mine: a block carries the time of the block before it was
        mined, and the draw needs the block after the close. False on a public chain."""
        deployment = await self.chain.start()
        if self.chain.embedded is not None:
            await asyncio.to_thread(
                self.chain.embedded.mine_blocks, blocks
            )  # py-evm: not on the loop
            return True
        if not deployment.embedded:
            return False
        adapter = await self.chain.adapter(OPERATOR)
        for _ in range(blocks):
            response = await adapter.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            if "error" in response:
                return False
        return True

    async def close(self, chain_round_id: int) -> Closed:
        adapter, lottery = await self._parts()
        await self._nudge()  # a development chain's next block: its time, not its idle past
        async with self._lock:
            try:
                receipt = await adapter.transact(lottery, "close", chain_round_id)
            except BlockchainError as exc:
                error = exc.details.get("error")
                if error == "RoundStillOpen":
                    raise RoundNotOver(details={"chainRoundId": chain_round_id}) from None
                if error not in ("AlreadyClosed", "AlreadyDrawn"):
                    raise
                r = await adapter.call(lottery, "round", chain_round_id)
                return Closed(close_block=int(r[7]), tickets=int(r[9]), pot=int(r[10]))
        (log,) = lottery.events.RoundClosed().process_receipt(receipt, errors=DISCARD)
        args = log["args"]
        return Closed(
            close_block=int(args["closeBlock"]),
            tickets=int(args["ticketCount"]),
            pot=int(args["pot"]),
        )

    async def reveal(self, chain_round_id: int, seed: bytes) -> Drawn:
        adapter, lottery = await self._parts()
        r = await adapter.call(lottery, "round", chain_round_id)
        if r[8]:  # drawn by an earlier attempt: read its log
            return await self._drawn_log(chain_round_id)
        draw_block = int(r[7]) + 1
        head = int(await adapter.w3.eth.block_number)
        if head < draw_block and not await self._nudge(draw_block - head):
            # the reveal must come in a block after the draw block: a public chain makes it
            raise DrawNotReady(details={"drawBlock": draw_block, "head": head})
        async with self._lock:
            try:
                receipt = await adapter.transact(lottery, "reveal", chain_round_id, seed)
            except BlockchainError as exc:
                if exc.details.get("error") == "DrawBlockNotMined":
                    raise DrawNotReady(details={"drawBlock": draw_block}) from None
                if exc.details.get("error") == "AlreadyDrawn":
                    return await self._drawn_log(chain_round_id)
                raise
        (log,) = lottery.events.RoundDrawn().process_receipt(receipt, errors=DISCARD)
        return _drawn(log)

    async def _drawn_log(self, chain_round_id: int) -> Drawn:
        _, lottery = await self._parts()
        logs = await lottery.events.RoundDrawn().get_logs(
            argument_filters={"roundId": chain_round_id}, from_block=await self._start_block()
        )
        if not logs:
            raise BlockchainError("The round is drawn but its log was not found")
        return _drawn(logs[-1])


def _issued(log: Any) -> Issued:
    args = log["args"]
    return Issued(
        first=int(args["firstTicket"]),
        count=int(args["count"]),
        wallet=to_checksum_address(args["holder"]),
        pot_added=int(args["potAdded"]),
        tx_hash=log["transactionHash"].to_0x_hex(),
    )


def _drawn(log: Any) -> Drawn:
    args = log["args"]
    winner = to_checksum_address(args["winner"])
    none = winner == to_checksum_address(ZERO_ADDRESS)
    return Drawn(
        seed=HexBytes(args["seed"]).to_0x_hex(),
        draw_block_hash=HexBytes(args["drawBlockHash"]).to_0x_hex(),
        winning_index=None if none else int(args["winningTicket"]),
        winner=None if none else winner,
        prize=int(args["prize"]),
        tx_hash=log["transactionHash"].to_0x_hex(),
    )


def _burns(logs: Any, shares: str) -> list[tuple[str, int, int]]:
    """(holder, token id, shares) of every MasterShares transfer to the zero address."""
    found: list[tuple[str, int, int]] = []
    for log in logs:
        if to_checksum_address(log["address"]) != shares or len(log["topics"]) != 4:
            continue
        topic = HexBytes(log["topics"][0])
        holder = to_checksum_address(HexBytes(log["topics"][2])[-20:])
        to = to_checksum_address(HexBytes(log["topics"][3])[-20:])
        if to != to_checksum_address(ZERO_ADDRESS):
            continue
        data = HexBytes(log["data"])
        if topic == TRANSFER_SINGLE:
            token_id, value = decode(["uint256", "uint256"], data)
            found.append((holder, int(token_id), int(value)))
        elif topic == TRANSFER_BATCH:
            ids, values = decode(["uint256[]", "uint256[]"], data)
            found.extend((holder, int(i), int(v)) for i, v in zip(ids, values, strict=True))
    return found
