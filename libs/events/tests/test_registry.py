"""The registry: routing key <-> Struct <-> schema version, and the JSON bodies it decodes."""

from __future__ import annotations

import uuid
from decimal import Decimal

import msgspec
import pytest
from audifi_events import (
    IntegrationEvent,
    Registry,
    UndecodableEvent,
    UnknownEventType,
    encode,
)


@pytest.fixture
def reg() -> Registry:
    return Registry()


def _master_registered(reg: Registry) -> type[IntegrationEvent]:
    @reg.register("nft.master.registered")
    class MasterRegistered(IntegrationEvent, kw_only=True):
        """A master recording was registered by its artist."""

        master_id: uuid.UUID
        wallet_address: str
        price_per_share: Decimal

    return MasterRegistered


def test_register_and_look_up(reg: Registry) -> None:
    cls = _master_registered(reg)
    assert cls.routing_key == "nft.master.registered"
    assert cls.schema_version == 1
    found = reg.get("nft.master.registered", 1)
    assert found.struct is cls
    assert found.summary == "A master recording was registered by its artist."
    assert found.producer == "nft"
    assert reg.get("nft.master.registered") is found
    event = cls(master_id=uuid.uuid4(), wallet_address="0xabc", price_per_share=Decimal("1.5"))
    assert reg.type_of(event) is found
    assert len(reg) == 1 and list(reg) == [found]


def test_unknown_lookups(reg: Registry) -> None:
    _master_registered(reg)
    with pytest.raises(UnknownEventType):
        reg.get("nft.master.burned")
    with pytest.raises(UnknownEventType):
        reg.get("nft.master.registered", 2)
    with pytest.raises(UnknownEventType):
        reg.decode("nft.master.burned", 1, b"{}")

    class Unregistered(IntegrationEvent, kw_only=True):
        x: int

    with pytest.raises(UnknownEventType):
        reg.type_of(Unregistered(x=1))


def test_latest_version_wins_whatever_the_registration_order(reg: Registry) -> None:
    @reg.register("vstudio.vote.cast", version=2)
    class VoteCastV2(IntegrationEvent, kw_only=True):
        decision_id: uuid.UUID
        weight: int

    @reg.register("vstudio.vote.cast", version=1)
    class VoteCast(IntegrationEvent, kw_only=True):
        decision_id: uuid.UUID

    assert reg.get("vstudio.vote.cast").struct is VoteCastV2
    assert reg.get("vstudio.vote.cast", 1).struct is VoteCast
    assert [t.schema_version for t in reg] == [1, 2]

    @reg.register("vstudio.vote.cast", version=3)
    class VoteCastV3(IntegrationEvent, kw_only=True):
        decision_id: uuid.UUID
        weight: int
        comment: str | None = None

    assert reg.get("vstudio.vote.cast").struct is VoteCastV3
    # an old message is decoded with the version it says it has
    body = b'{"decisionId": "%s"}' % str(uuid.uuid4()).encode()
    assert type(reg.decode("vstudio.vote.cast", 1, body)) is VoteCast
    with pytest.raises(UndecodableEvent):  # v2 requires weight
        reg.decode("vstudio.vote.cast", 2, body)


def test_duplicate_registration_refused(reg: Registry) -> None:
    _master_registered(reg)
    with pytest.raises(ValueError, match="registered twice"):

        @reg.register("nft.master.registered")
        class Again(IntegrationEvent, kw_only=True):
            master_id: uuid.UUID

    assert len(reg) == 1


@pytest.mark.parametrize(
    "key",
    [
        "nft.master",
        "nft.master.registered.again",
        "nft..registered",
        "nft.master.regis tered",
        "nft.master.registered!",
        "nft/master/registered",
        "",
    ],
)
def test_bad_routing_key_refused(reg: Registry, key: str) -> None:
    with pytest.raises(ValueError, match="routing key"):
        reg.register(key)


def test_only_integration_events_register(reg: Registry) -> None:
    class Plain(msgspec.Struct):
        x: int

    with pytest.raises(TypeError):
        reg.register("nft.plain.thing")(Plain)  # type: ignore[type-var]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"[1, 2]",
        b'{"masterId": "not-a-uuid", "walletAddress": "0x", "pricePerShare": "1"}',
        b'{"walletAddress": "0x", "pricePerShare": "1"}',  # missing masterId
        b'{"master_id": "00000000-0000-0000-0000-000000000000", "wallet_address": "0x",'
        b' "price_per_share": "1"}',  # snake_case is not the wire format
    ],
)
def test_garbage_raises_undecodable(reg: Registry, body: bytes) -> None:
    _master_registered(reg)
    with pytest.raises(UndecodableEvent, match=r"nft\.master\.registered v1"):
        reg.decode("nft.master.registered", 1, body)


def test_bodies_are_camel_case_and_round_trip(reg: Registry) -> None:
    cls = _master_registered(reg)
    event = cls(master_id=uuid.uuid4(), wallet_address="0xabc", price_per_share=Decimal("2.50"))
    body = encode(event)
    as_json = msgspec.json.decode(body)
    assert as_json == {
        "masterId": str(event.master_id),
        "walletAddress": "0xabc",
        "pricePerShare": "2.50",  # Decimal as a string, never a float
    }
    assert reg.decode("nft.master.registered", 1, body) == event
    # the ClassVars are not part of the body
    assert "routingKey" not in as_json and "schemaVersion" not in as_json


def test_events_are_frozen_and_hashable(reg: Registry) -> None:
    cls = _master_registered(reg)
    event = cls(master_id=uuid.uuid4(), wallet_address="0xabc", price_per_share=Decimal(1))
    with pytest.raises(AttributeError):
        event.wallet_address = "0xdef"  # type: ignore[misc]
    assert hash(event) == hash(msgspec.structs.replace(event))
    assert cls.__struct_config__.frozen


def test_an_event_with_positional_fields_is_refused() -> None:
    reg = Registry()

    class Positional(IntegrationEvent):
        master_id: str

    with pytest.raises(TypeError, match="kw_only=True"):
        reg.register("nft.master.positional")(Positional)


def test_a_superseded_shape_is_decoded_into_the_current_one(reg: Registry) -> None:
    @reg.register("vstudio.vote.cast", version=3)
    class VoteCastV3(IntegrationEvent, kw_only=True):
        voter_id: str
        weight: int

    @reg.register(
        "vstudio.vote.cast", version=2, upcast=lambda v2: VoteCastV3(**msgspec.structs.asdict(v2))
    )
    class VoteCastV2(IntegrationEvent, kw_only=True):
        voter_id: str
        weight: int

    @reg.register(
        "vstudio.vote.cast", version=1, upcast=lambda v1: VoteCastV2(voter_id=v1.user_id, weight=1)
    )
    class VoteCast(IntegrationEvent, kw_only=True):
        user_id: str

    assert reg.decode("vstudio.vote.cast", 1, b'{"userId": "u"}') == VoteCastV3(
        voter_id="u", weight=1
    )
    assert reg.get("vstudio.vote.cast", 1).struct is VoteCast
