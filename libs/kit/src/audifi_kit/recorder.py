"""The service event stores' recorder: writers insert concurrently, tailing readers never skip.

eventsourcing 9.5's PostgreSQL recorder takes an EXCLUSIVE table lock per insert so that
notification ids become visible in the order they were issued; that serialises every writer
of a service (ARCHITECTURE.md §10). This recorder takes no lock. Instead:

* A row's notification id is its transaction's id (`pg_current_xact_id()`, xid8) times 2**20
  plus its place in the insert (1, 2, ...). Log order is therefore transaction-id order, and
  one transaction's events stay together, in the order they were saved.
* A reader takes only ids below a *horizon* computed from the snapshot of the very statement
  that reads the rows: the lowest transaction id that may still commit a row of this table.
  Every transaction below it has finished (its rows are visible in that snapshot, or it rolled
  back), and any transaction that commits later has a higher id, hence higher notification
  ids. So a reader never moves past an id that commits later: the log is gap-free and ordered
  for every reader, without serialising writers.

Why not a sequence plus an xid column filtered by `xid < xmin`: a transaction may take its
xid before another one yet take its sequence number after it, so a reader following ids
would pass the lower number of a transaction still in flight (see test_recorder_concurrency).

The horizon is the snapshot's xmin when no visible row lies at or beyond it. Otherwise the
in-progress transactions are looked at: one positively seen running in *another database* of
the server can never write this table and does not hold the readers back; every other one
(this database, finished since the snapshot, or unknown) does. A long transaction elsewhere on
the server therefore never stalls this service's log, but one in this database delays its
readers until it ends, whether or not it writes events (`NotificationLog.held_back` tells a
follower to look again soon rather than wait for the next NOTIFY).

Each save is one statement, hence one implicit transaction and one round trip, prepared once
per connection. The LISTEN/NOTIFY wake-up is sent after the commit, not inside the
transaction: PostgreSQL serialises the commits of notifying transactions on a cluster-wide
lock, which would undo the concurrency (measured: 8 writers, 1,878 inserts/s without it, 295
with it). Concurrent writers share one NOTIFY; a wake-up lost with a crashed process is
covered by the followers' poll interval.

Tables made by the library's recorder are migrated at start: the sequence default of
`notification_id` is dropped (a writer still running the old code then fails loudly instead
of issuing ids below the ones already handed out), after checking every existing id lies
below the ids this recorder will issue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal
from psycopg.types.numeric import Int8

ID_BITS = 20
# Events one transaction may insert: the low bits of its notification ids.
MAX_EVENTS_PER_TRANSACTION = 2**ID_BITS - 1
_SCALE = 2**ID_BITS
MAX_POSITION = 2**63 - 1

log = logging.getLogger(__name__)


def horizon_sql(table: str) -> str:
    """A scalar SQL expression: the lowest notification id a reader must not reach yet.

    `table` is the (quoted, possibly schema-qualified) events table. Evaluate it in the same
    statement that reads the rows: both must come from one snapshot.
    """
    return f"""(SELECT CASE
        WHEN coalesce(s.head, 0) < pg_snapshot_xmin(s.snap)::text::bigint * {_SCALE}
        THEN pg_snapshot_xmin(s.snap)::text::bigint
        ELSE least(
            pg_snapshot_xmax(s.snap)::text::bigint,
            (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s.snap) AS x
             WHERE xid(x) NOT IN (
                SELECT a.backend_xid FROM pg_stat_get_activity(NULL) AS a
                WHERE a.backend_xid IS NOT NULL AND a.datid <> (
                    SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database()))))
        END * {_SCALE}
    FROM (SELECT pg_current_snapshot() AS snap,
                 (SELECT max(notification_id) FROM {table}) AS head) AS s)"""


def read_sql(table: str, placeholders: tuple[str, str, str], topics: str | None = None) -> str:
    """One page after a position: its rows, the horizon and the visible head, one snapshot.

    The horizon and the head come in a row of their own (its event columns null), not
    repeated on every row: two large integers fewer to build and free per event. Parameters:
    after (exclusive), upto (inclusive), limit.

    No ORDER BY outside the lateral page: the rows come out in the index's order (a nested
    loop over one row), and sorting them again spilled a page of 20,000 events to disk. SQL
    does not promise that order, so readers check it (`in_log_order`) and sort only if needed.

    The page is the next `limit` rows after `after` in the index's order (and of `topics`, an
    array placeholder, when given), cut at `upto` and at the horizon: a prefix, so nothing
    below the cut is skipped. The cuts stay outside the LIMIT on purpose: a range with an
    unknown end (the horizon) is estimated at 0.5% of the table, and with it PostgreSQL chose
    to bitmap-scan every later row and sort them for each page (58 ms a page of 10,000 in a
    log of 100,000, and growing with the log) instead of walking the index (4 ms).
    """
    return f"""WITH {_horizon_cte(table)}
    SELECT h.horizon, h.head, NULL::bigint AS notification_id, NULL::uuid AS originator_id,
           NULL::bigint AS originator_version, NULL::text AS topic, NULL::bytea AS state
    FROM h
    UNION ALL
    SELECT NULL, NULL, e.notification_id, e.originator_id, e.originator_version, e.topic, e.state
    FROM h CROSS JOIN LATERAL ({_page_sql(table, placeholders, topics)}) AS e"""


def read_columns_sql(table: str, placeholders: tuple[str, str, str]) -> str:
    """The page of `read_sql` as one row: the horizon, the head, and an array per column
    (null when the page is empty). asyncpg builds no row object per event, and the
    aggregation runs in PostgreSQL's process, on the other core: a third less of the
    reader's time than the same page as rows. The arrays hold the rows in one order (each
    aggregate sees the same stream); that it is the log's order is checked by the reader."""
    return f"""WITH {_horizon_cte(table)}
    SELECT h.horizon, h.head, e.ids, e.originators, e.versions, e.topics, e.states
    FROM h CROSS JOIN LATERAL (
        SELECT array_agg(notification_id) AS ids, array_agg(originator_id) AS originators,
               array_agg(originator_version) AS versions, array_agg(topic) AS topics,
               array_agg(state) AS states
        FROM ({_page_sql(table, placeholders)}) AS page) AS e"""


def _horizon_cte(table: str) -> str:
    head = f"(SELECT max(notification_id) FROM {table})"
    return f"h AS MATERIALIZED (SELECT {horizon_sql(table)} AS horizon, {head} AS head)"


def _page_sql(table: str, placeholders: tuple[str, str, str], topics: str | None = None) -> str:
    after, upto, limit = placeholders
    of_topics = f" AND topic = ANY({topics})" if topics else ""
    return f"""SELECT * FROM (
            SELECT notification_id, originator_id, originator_version, topic, state
            FROM {table} WHERE notification_id > {after}{of_topics}
            ORDER BY notification_id LIMIT {limit}) AS p
        WHERE p.notification_id <= {upto} AND p.notification_id < h.horizon"""


def in_log_order(page: list[Notification]) -> list[Notification]:
    """The page sorted by notification id (a check, in the common case: it already is)."""
    previous = -1
    for n in page:
        if n.id < previous:
            return sorted(page, key=lambda n: n.id)
        previous = n.id
    return page


def max_id_sql(table: str) -> str:
    """The highest id a reader may take now (0 when none)."""
    return (
        f"SELECT coalesce(max(notification_id), 0) FROM {table} "
        f"WHERE notification_id < {horizon_sql(table)}"
    )


class XidOrderedRecorder(PostgresApplicationRecorder):
    """eventsourcing's application recorder without the table lock (see the module doc).

    Same interface and the same optimistic concurrency: the primary key on (originator_id,
    originator_version) refuses a second event at a version with an IntegrityError. `save`
    may pass `inbox=(consumer, message_id)` when `inbox_table` is set: the row is inserted in
    the same statement, and a message already applied is refused with an IntegrityError.
    """

    inbox_table: str | None = None

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        qualified = SQL("{}.{}").format(schema, table)
        self._qualified = qualified.as_string(None)
        # The library's statements, minus its insert function (it notifies inside the
        # transaction and takes ids from the sequence) and with no sequence on new tables.
        statements: list[Composed] = [
            s
            for s in self.sql_create_statements
            if s is not self.sql_create_pg_function_insert_events
        ]
        statements[self.create_table_statement_index] = SQL(
            "CREATE TABLE IF NOT EXISTS {qualified} ("
            "originator_id {id_type} NOT NULL, "
            "originator_version bigint NOT NULL, "
            "topic text, "
            "state bytea, "
            "notification_id bigint NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version)) "
            "WITH (autovacuum_enabled = true, autovacuum_vacuum_threshold = 100000000, "
            "autovacuum_vacuum_scale_factor = 0.5, autovacuum_analyze_threshold = 1000, "
            "autovacuum_analyze_scale_factor = 0.01)"
        ).format(qualified=qualified, id_type=Identifier(self.datastore.originator_id_type))
        statements.append(self._migration(qualified))
        self.sql_create_statements = statements

        inbox = ""
        inboxed = "true"
        only_if_inboxed = ""
        if self.inbox_table is not None:
            inbox_name = SQL("{}.{}").format(schema, Identifier(self.inbox_table))
            inbox = (
                f"inbox AS (INSERT INTO {inbox_name.as_string(None)} (consumer, message_id) "
                "SELECT %(consumer)s::text, %(message_id)s::text "
                "WHERE %(consumer)s::text IS NOT NULL "
                "ON CONFLICT DO NOTHING RETURNING 1), "
            )
            inboxed = "(%(consumer)s::text IS NULL OR EXISTS (SELECT 1 FROM inbox))"
            only_if_inboxed = f"WHERE {inboxed}"
        # Binary parameters: four arrays, however many events. One statement: one implicit
        # transaction, committed when it returns.
        self.insert_statement = SQL(
            "WITH "
            + inbox
            + "tx AS MATERIALIZED (SELECT pg_current_xact_id()::text::bigint * "
            + str(_SCALE)
            + " AS base), "
            "ins AS (INSERT INTO {qualified} "
            "(originator_id, originator_version, topic, state, notification_id) "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state, tx.base + e.n "
            "FROM tx, unnest(%(ids)b::{id_type}[], %(versions)b::int8[], %(topics)b::text[], "
            "%(states)b::bytea[]) WITH ORDINALITY "
            "AS e(originator_id, originator_version, topic, state, n) "
            + only_if_inboxed
            + " RETURNING 1) "
            "SELECT (SELECT base FROM tx) AS base, (SELECT count(*) FROM ins) AS inserted, "
            + inboxed
            + " AS inboxed"
        ).format(qualified=qualified, id_type=Identifier(self.datastore.originator_id_type))
        self._notify = SQL("NOTIFY {}").format(Identifier(self.channel_name))
        self._select_page = read_sql(self._qualified, ("%(after)s", "%(upto)s", "%(limit)s"))
        self._select_topics = read_sql(
            self._qualified, ("%(after)s", "%(upto)s", "%(limit)s"), "%(topics)s"
        )
        self._max_id = max_id_sql(self._qualified)
        self._select_after = (
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            f"FROM unnest(%s::uuid[], %s::bigint[]) AS w(id, after) JOIN {self._qualified} e "
            "ON e.originator_id = w.id AND e.originator_version > w.after "
            "ORDER BY e.originator_id, e.originator_version"
        )
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self._waking = False

    def _migration(self, qualified: Composed) -> Composed:
        # Idempotent, and a no-op (no lock taken) once done: replicas start it at will.
        return SQL(
            "DO $migrate$ DECLARE top bigint; first bigint; BEGIN "
            "IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {regclass}::regclass "
            "AND attname = 'notification_id' AND atthasdef) THEN "
            "LOCK TABLE {qualified} IN ACCESS EXCLUSIVE MODE; "
            "SELECT coalesce(max(notification_id), 0) INTO top FROM {qualified}; "
            "first := pg_snapshot_xmin(pg_current_snapshot())::text::bigint * {scale}; "
            "IF top >= first THEN RAISE EXCEPTION "
            "'cannot migrate %: notification id % is not below %, the first this recorder "
            "would issue', {regclass}, top, first; END IF; "
            "ALTER TABLE {qualified} ALTER COLUMN notification_id DROP DEFAULT; "
            "END IF; END $migrate$"
        ).format(
            qualified=qualified,
            regclass=Literal(qualified.as_string(None)),
            scale=Literal(_SCALE),
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        inbox: tuple[str, str] | None = kwargs.get("inbox")
        if inbox is not None and self.inbox_table is None:
            raise ProgrammingError(f"{type(self).__name__} keeps no inbox")
        count = len(stored_events)
        if count == 0 and inbox is None:
            return []
        if count > MAX_EVENTS_PER_TRANSACTION:
            raise ProgrammingError(
                f"{count} events in one transaction: at most {MAX_EVENTS_PER_TRANSACTION}"
            )
        params = self.insert_params(stored_events, inbox)
        with self.datastore.get_connection() as conn:
            with conn.cursor() as curs:
                curs.execute(self.insert_statement, params, prepare=True)
                row = curs.fetchone()
            assert row is not None
            if not row["inboxed"]:
                assert inbox is not None
                raise IntegrityError(f"{inbox[0]} has already applied {inbox[1]}")
            if row["inserted"] != count:
                raise ProgrammingError(f"inserted {row['inserted']} of {count} events")
            if count:
                self._wake_followers(conn)
        base = int(row["base"])
        return list(range(base + 1, base + count + 1))

    def insert_params(
        self, stored_events: Sequence[StoredEvent], inbox: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """The parameters of `insert_statement` (tests run it in transactions they hold)."""
        return {
            "ids": [e.originator_id for e in stored_events],
            # Int8, not int: one prepared statement whatever the versions' magnitude.
            "versions": [Int8(e.originator_version) for e in stored_events],
            "topics": [e.topic for e in stored_events],
            "states": [e.state for e in stored_events],
            "consumer": inbox[0] if inbox else None,
            "message_id": inbox[1] if inbox else None,
        }

    def _wake_followers(self, conn: Any) -> None:
        """NOTIFY after the commit; writers that commit meanwhile share the next one."""
        with self._wake_lock:
            self._wake_pending = True
            if self._waking:
                return
            self._waking = True
        try:
            while True:
                with self._wake_lock:
                    if not self._wake_pending:
                        self._waking = False
                        return
                    self._wake_pending = False
                conn.execute(self._notify)
        except Exception as exc:
            # The events are committed: failing the save now would make its caller retry
            # it. Followers find them at their next poll.
            with self._wake_lock:
                self._waking = False
            log.warning("NOTIFY %s failed after a commit: %s", self.channel_name, exc)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events_after(
        self, versions: Sequence[tuple[UUID, int]]
    ) -> dict[UUID, list[StoredEvent]]:
        """Several aggregates' events after a version each, in one statement: group commit
        fast-forwards a batch's aggregates with it instead of one round trip per aggregate."""
        if not versions:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                self._select_after,  # type: ignore[arg-type]
                ([v[0] for v in versions], [v[1] for v in versions]),
                prepare=True,
            )
            found: dict[UUID, list[StoredEvent]] = {}
            for row in curs.fetchall():
                found.setdefault(row["originator_id"], []).append(
                    StoredEvent(
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                )
            return found

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        after = 0 if start is None else (start - 1 if inclusive_of_start else start)
        params: dict[str, Any] = {
            "after": after,
            "upto": MAX_POSITION if stop is None else stop,
            "limit": limit,
        }
        statement = self._select_page
        if topics:
            statement = self._select_topics
            params["topics"] = list(topics)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params, prepare=True)  # type: ignore[arg-type]
            return in_log_order(
                [
                    Notification(
                        id=row["notification_id"],
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                    for row in curs.fetchall()
                    if row["notification_id"] is not None
                ]
            )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def max_notification_id(self) -> int | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._max_id)  # type: ignore[arg-type]
            row = curs.fetchone()
            assert row is not None
            return int(next(iter(row.values()))) or None

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        raise NotImplementedError("insert_events writes in one statement")


def transaction_of(notification_id: int) -> int:
    """The id (xid8) of the transaction that wrote a notification (this recorder's ids only)."""
    return notification_id >> ID_BITS
