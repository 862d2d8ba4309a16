"""The recorder against an in-memory model, driven by hypothesis.

Transactions are opened, take their id, insert, commit or roll back in any interleaving (up to
three at once), next to saves through the application; readers follow the log at random page
sizes. The model says exactly what a reader may read: the committed events, in id order, of
transactions below the lowest id of a transaction still open. Optimistic concurrency is
modelled too: a version already taken is refused.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

import psycopg
from audifi_kit.eventstore import EventStore
from audifi_kit.recorder import ID_BITS, XidOrderedRecorder
from eventsourcing.persistence import IntegrityError, StoredEvent
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from kit_sample import Account, Bank

SLOTS = 3
TOPIC = "kit_sample:Account.Credited"


@dataclass
class Tx:
    conn: psycopg.Connection
    xid: int | None = None
    events: list[tuple[uuid.UUID, int]] = field(default_factory=list)
    inserted: bool = False
    failed: bool = False


@dataclass(frozen=True)
class Row:
    id: int
    aggregate: uuid.UUID
    version: int


class RecorderModel(RuleBasedStateMachine):
    store: EventStore[Bank]
    connections: list[psycopg.Connection]  # autocommit: each BEGIN ... COMMIT is explicit

    def __init__(self) -> None:
        super().__init__()
        self.recorder: XidOrderedRecorder = self.store.app.recorder  # type: ignore[assignment]
        self.txs: dict[int, Tx] = {}
        self.committed: list[Row] = []
        self.versions: dict[uuid.UUID, int] = {}
        self.readers: dict[int, list[int]] = {0: [], 1: []}
        # Insertion-ordered, never sorted by their random ids: hypothesis replays its draws.
        self.raw: dict[uuid.UUID, None] = {}  # written by these transactions
        self.accounts: dict[uuid.UUID, None] = {}  # real Accounts, saved by the application

    @initialize()
    def empty_log(self) -> None:
        self.connections[0].execute(f"TRUNCATE {self.store.table}")

    def teardown(self) -> None:
        for tx in self.txs.values():
            tx.conn.execute("ROLLBACK")
        self.txs.clear()

    # -- the model ---------------------------------------------------------------------------

    def pending(self) -> set[uuid.UUID]:
        return {a for tx in self.txs.values() for a, _ in tx.events}

    def readable(self, after: int) -> list[Row]:
        open_xids = [tx.xid for tx in self.txs.values() if tx.xid is not None]
        horizon = min(open_xids) << ID_BITS if open_xids else 2**63
        return [r for r in sorted(self.committed, key=lambda r: r.id) if after < r.id < horizon]

    # -- transactions ------------------------------------------------------------------------

    @precondition(lambda self: len(self.txs) < SLOTS)
    @rule(take_id=st.booleans())
    def begin(self, take_id: bool) -> None:
        slot = next(i for i in range(SLOTS) if i not in self.txs)
        conn = self.connections[slot]
        conn.execute("BEGIN")
        self.txs[slot] = tx = Tx(conn)
        if take_id:
            tx.xid = self._xid(conn)

    def _xid(self, conn: psycopg.Connection) -> int:
        row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
        assert row is not None
        return int(row[0])

    @precondition(lambda self: any(t.xid is None and not t.failed for t in self.txs.values()))
    @rule(data=st.data())
    def take_id(self, data: st.DataObject) -> None:
        slots = [s for s, t in self.txs.items() if t.xid is None and not t.failed]
        slot = data.draw(st.sampled_from(slots))
        self.txs[slot].xid = self._xid(self.txs[slot].conn)

    @precondition(lambda self: any(not t.inserted for t in self.txs.values()))
    @rule(
        data=st.data(),
        new=st.lists(st.integers(1, 3), max_size=2),
        existing=st.integers(0, 2),
        conflict=st.booleans(),
    )
    def insert(self, data: st.DataObject, new: list[int], existing: int, conflict: bool) -> None:
        slot = data.draw(st.sampled_from([s for s, t in self.txs.items() if not t.inserted]))
        tx = self.txs[slot]
        events: list[tuple[uuid.UUID, int]] = []
        for count in new:
            aggregate = uuid.uuid4()
            events += [(aggregate, v) for v in range(1, count + 1)]
        # Never an aggregate another open transaction wrote: this insert would wait for it.
        pending = self.pending()
        free = [a for a in self.versions if (conflict or a in self.raw) and a not in pending]
        if free:
            for aggregate in data.draw(st.lists(st.sampled_from(free), max_size=existing)):
                top = self.versions[aggregate]
                events.append((aggregate, top if conflict else top + 1))
            events = list(dict.fromkeys(events))
        stored = [StoredEvent(a, v, TOPIC, b'{"amount":1}') for a, v in events]
        tx.inserted = True
        tx.events = events
        refused = any(v <= self.versions.get(a, 0) for a, v in events)
        try:
            tx.conn.execute(self.recorder.insert_statement, self.recorder.insert_params(stored))
        except psycopg.errors.UniqueViolation:
            assert refused, "a free version was refused"
            # PostgreSQL aborts the transaction at the error, not at the ROLLBACK that ends
            # its block: its id no longer holds readers back, its rows no longer block.
            tx.failed, tx.xid, tx.events = True, None, []
            return
        assert not refused, "a taken version was accepted"
        if tx.xid is None:  # the statement takes one, even with nothing to insert
            tx.xid = self._xid(tx.conn)

    @precondition(lambda self: bool(self.txs))
    @rule(data=st.data(), commit=st.booleans())
    def finish(self, data: st.DataObject, commit: bool) -> None:
        slot = data.draw(st.sampled_from(sorted(self.txs)))
        tx = self.txs.pop(slot)
        if commit and not tx.failed:
            tx.conn.execute("COMMIT")
            for place, (aggregate, version) in enumerate(tx.events, start=1):
                assert tx.xid is not None
                self.committed.append(Row((tx.xid << ID_BITS) + place, aggregate, version))
                self.versions[aggregate] = version
                self.raw[aggregate] = None
        else:
            tx.conn.execute("ROLLBACK")

    @rule(new=st.booleans())
    def save_through_the_application(self, new: bool) -> None:
        app = self.store.app
        pending = self.pending()
        free = [a for a in self.accounts if a not in pending]
        if new or not free:
            account = Account("model")
        else:
            account = app.repository.get(free[0])
        account.credit(1)
        for recording in app.save(account):
            n = recording.notification
            self.committed.append(Row(n.id, n.originator_id, n.originator_version))  # type: ignore[arg-type]
            self.versions[n.originator_id] = n.originator_version  # type: ignore[index]
        self.accounts[account.id] = None

    @rule()
    def a_taken_version_is_refused(self) -> None:
        pending = self.pending()
        free = [a for a in self.versions if a not in pending]
        if not free:
            return
        taken = StoredEvent(free[0], self.versions[free[0]], TOPIC, b"{}")
        try:
            self.recorder.insert_events([taken])
        except IntegrityError:
            return
        raise AssertionError("a taken version was accepted")

    # -- readers -----------------------------------------------------------------------------

    @rule(reader=st.sampled_from([0, 1]), limit=st.integers(1, 6))
    def read(self, reader: int, limit: int) -> None:
        seen = self.readers[reader]
        after = seen[-1] if seen else 0
        expected = [r.id for r in self.readable(after)][:limit]
        for _ in range(20):
            page = self.recorder.select_notifications(after, limit, inclusive_of_start=False)
            got = [n.id for n in page]
            assert got == expected[: len(got)], "read past a transaction still open"
            if got == expected:
                break
        assert got == expected, "an event that could be read was not"
        seen.extend(got)

    @invariant()
    def readers_never_go_back(self) -> None:
        for seen in self.readers.values():
            assert seen == sorted(set(seen))

    @invariant()
    def max_id_is_the_last_readable(self) -> None:
        readable = self.readable(0)
        assert (self.recorder.max_notification_id() or 0) == (readable[-1].id if readable else 0)


async def test_the_recorder_behaves_as_its_model(bank: EventStore[Bank]) -> None:
    RecorderModel.store = bank
    RecorderModel.connections = [
        psycopg.connect(bank.location.url, autocommit=True) for _ in range(SLOTS)
    ]
    try:
        run_state_machine_as_test(
            RecorderModel,
            settings=settings(
                max_examples=int(os.environ.get("AUDIFI_MODEL_EXAMPLES", "20")),
                stateful_step_count=40,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        for conn in RecorderModel.connections:
            conn.close()


async def test_a_read_by_topic_walks_the_whole_log_in_order(bank: EventStore[Bank]) -> None:
    """eventsourcing's topic-filtered read: the page is the next `limit` events *of those
    topics* (not of the log, then filtered: a gap of other topics longer than a page would
    look like the end), in id order, cut at `stop`."""
    app = bank.app
    account = Account("topics")
    for i in range(12):
        account.credit(i + 1)
        if i % 4 == 0:
            account.rename(f"owner {i}")
    app.save(account)
    everything = app.recorder.select_notifications(1, 100)
    credited = [n.id for n in everything if n.topic == TOPIC]
    assert len(credited) == 12
    renamed = "kit_sample:Account.Renamed"
    renames = [n.id for n in everything if n.topic == renamed]
    # Pages of one rename each, with four credits or more between two renames.
    walked: list[int] = []
    while page := app.recorder.select_notifications(
        walked[-1] if walked else 0, 1, topics=[renamed], inclusive_of_start=False
    ):
        walked.extend(n.id for n in page)
    assert walked == renames and len(renames) == 3
    got: list[int] = []
    after = 0
    while page := app.recorder.select_notifications(
        after, 5, topics=[TOPIC], inclusive_of_start=False
    ):
        assert all(n.topic == TOPIC for n in page)
        got.extend(n.id for n in page)
        after = page[-1].id
    assert got == credited
    assert [
        n.id for n in app.recorder.select_notifications(1, 100, stop=credited[5], topics=[TOPIC])
    ] == credited[:6]
    assert [n.id for n in app.recorder.select_notifications(1, 100, stop=credited[5])] == [
        n.id for n in everything if n.id <= credited[5]
    ]
