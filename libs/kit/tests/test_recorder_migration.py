"""Event stores made by the previous recorder (eventsourcing's, with its table lock) keep working.

Their events table has a `notification_id bigserial`: ids 1, 2, 3... The new recorder drops
the sequence default at start (a writer still running the old code then fails instead of
issuing ids below the new ones) and issues ids above every existing one.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from audifi_kit.eventstore import application_env, open_event_store
from audifi_kit.notifications import NotificationLog
from audifi_kit.postgres import service_database
from audifi_kit.settings import Settings
from eventsourcing.persistence import IntegrityError
from kit_sample import Bank

PREVIOUS_RECORDER = "eventsourcing.postgres:PostgresApplicationRecorder"


async def previous_store(settings: Settings) -> Bank:
    """The application as today's code built it: the library's recorder made the table."""
    location = await service_database(settings, "sample")
    env = application_env(location, settings) | {"APPLICATION_RECORDER_TOPIC": PREVIOUS_RECORDER}
    return await asyncio.to_thread(Bank, env)


async def test_events_stored_by_the_previous_recorder_are_read_and_followed(
    settings: Settings,
) -> None:
    old = await previous_store(settings)
    try:
        ada = old.open_account("Ada")
        for amount in (10, 20, 30):
            old.credit(ada, amount)
        assert [n.id for n in old.recorder.select_notifications(1, 10)] == [1, 2, 3, 4]

        store = await open_event_store("sample", Bank, settings)  # migrates
        try:
            conn = await store.connect()
            try:
                default = await conn.fetchval(
                    "SELECT column_default FROM information_schema.columns "
                    "WHERE table_name = $1 AND column_name = 'notification_id'",
                    store.table,
                )
                assert default is None
                # A writer still running the old code fails loudly: it would have issued
                # id 5, below the ids new writers issue, and readers past those skip it.
                with pytest.raises(IntegrityError):
                    old.credit(ada, 1)

                assert await store.call(store.app.balance, ada) == 60
                grace = await store.call(store.app.open_account, "Grace")
                credited = await store.call(store.app.credit, ada, 40)
                log = NotificationLog(store.table)
                # A follower stopped at an old position goes on, old events first.
                page = await log.read(conn, 2, 100)
                assert [n.id for n in page][:2] == [3, 4]
                assert [n.originator_id for n in page] == [ada, ada, grace, ada]
                assert page[-1].id == credited > 4
                assert await log.max_id(conn) == credited
                assert await store.call(store.app.balance, ada) == 100
            finally:
                await conn.close()
            again = await open_event_store("sample", Bank, settings)  # a second start: no-op
            again.close()
        finally:
            store.close()
    finally:
        old.close()


async def test_a_table_whose_ids_the_recorder_cannot_follow_is_refused(
    settings: Settings,
) -> None:
    old = await previous_store(settings)
    try:
        old.open_account("Ada")
    finally:
        old.close()
    location = await service_database(settings, "sample")
    conn = await asyncpg.connect(location.asyncpg_dsn)
    try:
        await conn.execute("UPDATE sample_events SET notification_id = 2 ^ 62")
    finally:
        await conn.close()
    with pytest.raises(Exception, match="cannot migrate"):
        await open_event_store("sample", Bank, settings)
