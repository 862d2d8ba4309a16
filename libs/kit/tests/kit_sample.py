"""A small bank, standing in for a real service in the kit's own tests.

`sample` is the producing service: Account aggregates, a `balances` projection and an outbox
publishing `sample.account.opened` / `sample.account.credited`. Debits and renames stay
private. `ledger` stands for another service consuming those events into its own database.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec
from audifi_events import IntegrationEvent, integration_event
from audifi_kit.eventstore import ServiceApplication
from audifi_kit.inbox import Consumer, HandlerContext
from audifi_kit.outbox import OutboxMapping
from audifi_kit.projections import PageEvent, PageProjection, Projection, handles
from audifi_kit.spec import ServiceSpec
from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic


class InsufficientFunds(Exception):
    pass


class Account(Aggregate):
    @event("Opened")
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = 0

    @event("Credited")
    def credit(self, amount: int) -> None:
        self.balance += amount

    def debit(self, amount: int) -> None:
        if amount > self.balance:
            raise InsufficientFunds(f"balance {self.balance} < {amount}")
        self._debited(amount)

    @event("Debited")
    def _debited(self, amount: int) -> None:
        self.balance -= amount

    @event("Renamed")
    def rename(self, owner: str) -> None:
        self.owner = owner


class Bank(ServiceApplication):
    name = "sample"

    def open_account(self, owner: str) -> UUID:
        account = Account(owner)
        self.save(account)
        return account.id

    def credit(self, account_id: UUID, amount: int) -> int:
        account = self.decide_credit(account_id, amount)
        [recording] = self.save(account)
        return recording.notification.id

    def decide_credit(self, account_id: UUID, amount: int) -> Account:
        account: Account = self.repository.get(account_id)
        account.credit(amount)
        return account

    def debit(self, account_id: UUID, amount: int) -> None:
        account: Account = self.repository.get(account_id)
        account.debit(amount)
        self.save(account)

    def balance(self, account_id: UUID) -> int:
        account: Account = self.repository.get(account_id)
        return account.balance


@integration_event("sample.account.opened")
class AccountOpened(IntegrationEvent, kw_only=True):
    """A customer opened an account."""

    account_id: UUID
    owner: str


@integration_event("sample.account.credited")
class AccountCredited(IntegrationEvent, kw_only=True):
    """Money arrived on an account."""

    account_id: UUID
    amount: int
    balance: int


outbox = OutboxMapping("sample")


@outbox.maps(Account.Opened)
def _opened(e: Account.Opened) -> AccountOpened:
    return AccountOpened(account_id=e.originator_id, owner=e.owner)


@outbox.maps(Account.Credited)
def _credited(e: Account.Credited) -> AccountCredited:
    # The running balance is not on the event; the amount is what consumers need, the
    # balance field shows an integration event may differ in shape from the domain event.
    return AccountCredited(account_id=e.originator_id, amount=e.amount, balance=-1)


class Balances(Projection):
    name = "balances"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE accounts (id uuid PRIMARY KEY, owner text NOT NULL, "
            "balance bigint NOT NULL, events integer NOT NULL)"
        )

    @handles(Account.Opened)
    async def opened(self, conn: asyncpg.Connection, e: Account.Opened, _n: object) -> None:
        await conn.execute("INSERT INTO accounts VALUES ($1, $2, 0, 1)", e.originator_id, e.owner)

    @handles(Account.Credited)
    async def credited(self, conn: asyncpg.Connection, e: Account.Credited, _n: object) -> None:
        await conn.execute(
            "UPDATE accounts SET balance = balance + $2, events = events + 1 WHERE id = $1",
            e.originator_id,
            e.amount,
        )

    @handles(Account.Debited)
    async def debited(self, conn: asyncpg.Connection, e: Account.Debited, _n: object) -> None:
        await conn.execute(
            "UPDATE accounts SET balance = balance - $2, events = events + 1 WHERE id = $1",
            e.originator_id,
            e.amount,
        )

    @handles(Account.Renamed)
    async def renamed(self, conn: asyncpg.Connection, e: Account.Renamed, _n: object) -> None:
        await conn.execute(
            "UPDATE accounts SET owner = $2, events = events + 1 WHERE id = $1",
            e.originator_id,
            e.owner,
        )


class BalancesCopy(Balances):
    """The same view under another name: a never-rebuilt reference in replay tests."""

    name = "balances_copy"


class _Owner(msgspec.Struct, gc=False):
    owner: str


class _Amount(msgspec.Struct, gc=False):
    amount: int


class PageBalances(PageProjection):
    """The `balances` view applied a page at a time: the same rows as `Balances`, with one
    statement per kind of change instead of one per event."""

    name = "page_balances"
    fields = {
        Account.Opened: _Owner,
        Account.Credited: _Amount,
        Account.Debited: _Amount,
        Account.Renamed: _Owner,
    }
    _OPENED = get_topic(Account.Opened)
    _CREDITED = get_topic(Account.Credited)
    _DEBITED = get_topic(Account.Debited)

    async def create(self, conn: asyncpg.Connection) -> None:
        await Balances().create(conn)

    async def apply_events(self, conn: asyncpg.Connection, events: list[PageEvent]) -> None:
        opened: list[tuple[UUID, str]] = []
        changes: dict[UUID, list] = {}  # id -> [balance delta, events, last owner or None]
        for e in events:
            if e.topic == self._OPENED:
                opened.append((e.originator_id, e.data.owner))
                continue
            change = changes.get(e.originator_id)
            if change is None:
                change = changes[e.originator_id] = [0, 0, None]
            change[1] += 1
            if e.topic == self._CREDITED:
                change[0] += e.data.amount
            elif e.topic == self._DEBITED:
                change[0] -= e.data.amount
            else:
                change[2] = e.data.owner
        if opened:  # before the changes: an account opened and credited in the same page
            await conn.execute(
                "INSERT INTO accounts SELECT id, owner, 0, 1 FROM unnest($1::uuid[], $2::text[]) "
                "AS o(id, owner)",
                [i for i, _ in opened],
                [o for _, o in opened],
            )
        if changes:
            await conn.execute(
                "UPDATE accounts SET balance = balance + c.delta, events = events + c.n, "
                "owner = coalesce(c.owner, accounts.owner) FROM unnest($1::uuid[], "
                "$2::bigint[], $3::int[], $4::text[]) AS c(id, delta, n, owner) "
                "WHERE accounts.id = c.id",
                list(changes),
                [c[0] for c in changes.values()],
                [c[1] for c in changes.values()],
                [c[2] for c in changes.values()],
            )


spec = ServiceSpec(
    name="sample",
    application=Bank,
    projections=(Balances, BalancesCopy),
    outbox=outbox,
)


LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS ledger_totals (
    account_id uuid PRIMARY KEY, credited bigint NOT NULL, credits integer NOT NULL
)
"""


def ledger_consumer(purpose: str = "sample-events", retry_delays_ms=(50, 100)) -> Consumer:
    """The `ledger` service's consumer: totals credited per account, in its own database.

    Deliberately not idempotent by itself (`credited + amount`): only the inbox keeps a
    redelivered message from counting twice.
    """
    consumer = Consumer("ledger", purpose, retry_delays_ms=retry_delays_ms)

    @consumer.handler("sample.account.credited")
    async def on_credited(e: AccountCredited, ctx: HandlerContext) -> None:
        assert ctx.conn is not None
        await ctx.conn.execute(
            "INSERT INTO ledger_totals VALUES ($1, $2, 1) ON CONFLICT (account_id) DO UPDATE "
            "SET credited = ledger_totals.credited + $2, credits = ledger_totals.credits + 1",
            e.account_id,
            e.amount,
        )

    return consumer
