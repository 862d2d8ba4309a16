"""The AsyncAPI 3.0.0 export of the published language and its CLI."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import audifi_events
import msgspec
import pytest
from audifi_events import IntegrationEvent, Registry, encode
from audifi_events.asyncapi import asyncapi_document, load_all, main

reg = Registry()


class Split(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    wallet_address: str
    share_bps: int


@reg.register("nft.master.registered")
class MasterRegistered(IntegrationEvent, kw_only=True):
    """A master recording was registered by its artist."""

    master_id: uuid.UUID
    title: str
    total_shares: int
    price_per_share: Decimal
    currency: str
    registered_at: Annotated[datetime, msgspec.Meta(tz=True)]
    isrc: str | None = None
    splits: list[Split] = []


@reg.register("nft.master.registered", version=2)
class MasterRegisteredV2(IntegrationEvent, kw_only=True):
    """A master recording was registered by its artist, with its genre.

    Version 2 adds the genre and drops the ISRC.
    """

    master_id: uuid.UUID
    title: str
    genre: str
    total_shares: int
    price_per_share: Decimal
    currency: str
    registered_at: Annotated[datetime, msgspec.Meta(tz=True)]
    splits: list[Split] = []


@reg.register("vstudio.vote.cast")
class VoteCast(IntegrationEvent, kw_only=True):
    """A fan voted on a studio decision."""

    session_id: uuid.UUID
    decision_id: uuid.UUID
    voter_id: uuid.UUID
    option: str
    weight: int
    cast_at: datetime


def _samples() -> list[IntegrationEvent]:
    now = datetime(2026, 2, 1, 12, 30, tzinfo=UTC)
    split = Split(wallet_address="0x" + "ab" * 20, share_bps=2500)
    return [
        MasterRegistered(
            master_id=uuid.uuid4(),
            title="Blue",
            total_shares=10_000,
            price_per_share=Decimal("12.50"),
            currency="USD",
            registered_at=now,
            splits=[split, split],
        ),
        MasterRegistered(
            master_id=uuid.uuid4(),
            title="Red",
            total_shares=1,
            price_per_share=Decimal("0"),
            currency="EUR",
            registered_at=now,
            isrc="USRC17607839",
        ),
        MasterRegisteredV2(
            master_id=uuid.uuid4(),
            title="Green",
            genre="jazz",
            total_shares=5,
            price_per_share=Decimal("1e-2"),
            currency="USD",
            registered_at=now,
        ),
        VoteCast(
            session_id=uuid.uuid4(),
            decision_id=uuid.uuid4(),
            voter_id=uuid.uuid4(),
            option="take-2",
            weight=3,
            cast_at=now,
        ),
    ]


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return asyncapi_document(reg)


# --------------------------------------------------------------------------- a tiny validator


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


_FORMATS = {
    "uuid": re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
    "date-time": re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"),
    "decimal": re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"),
}
_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def _validate(doc: dict[str, Any], schema: dict[str, Any], value: Any, path: str = "$") -> None:
    """The JSON Schema subset msgspec emits (jsonschema is not in the venv)."""
    if "$ref" in schema:
        return _validate(doc, _resolve(doc, schema["$ref"]), value, path)
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                _validate(doc, option, value, path)
                return None
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{path}: matches no anyOf option: {errors}")
    known = {"type", "properties", "required", "items", "format", "const", "enum", "pattern"}
    known |= {"title", "description", "default"}
    assert set(schema) <= known, f"{path}: validator does not know {set(schema) - known}"
    if "type" in schema:
        expected = _TYPES[schema["type"]]
        ok = isinstance(value, expected) and not (
            isinstance(value, bool) and schema["type"] in ("integer", "number")
        )
        assert ok, f"{path}: {value!r} is not {schema['type']}"
    if "const" in schema:
        assert value == schema["const"], path
    if "enum" in schema:
        assert value in schema["enum"], path
    if "pattern" in schema:
        assert re.search(schema["pattern"], value), path
    if "format" in schema and schema["format"] in _FORMATS:
        assert _FORMATS[schema["format"]].match(value), f"{path}: {value!r} not {schema['format']}"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            assert name in value, f"{path}: missing {name}"
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _validate(doc, sub, value[name], f"{path}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _validate(doc, schema["items"], item, f"{path}[{i}]")
    return None


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


# --------------------------------------------------------------------------- the document

ID = re.compile(r"^[A-Za-z0-9.\-_]+$")  # AsyncAPI 3 component / channel / operation keys


def test_top_level(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] == "AudiFi integration events"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", doc["info"]["version"])
    assert doc["defaultContentType"] == "application/json"
    server = doc["servers"]["production"]
    assert server["protocol"] == "amqp" and server["host"] == "{host}"
    assert server["variables"]["host"]["default"] == "localhost:5672"
    fixed = asyncapi_document(reg, host="rabbitmq.internal:5672")["servers"]["production"]
    assert fixed["host"] == "rabbitmq.internal:5672" and "variables" not in fixed
    json.dumps(doc)  # plain JSON all the way down


def test_every_reference_resolves_and_ids_are_valid(doc: dict[str, Any]) -> None:
    refs = _refs(doc)
    assert refs
    for ref in refs:
        _resolve(doc, ref)
    for section in (doc["channels"], doc["operations"]):
        assert all(ID.match(k) for k in section)
    for section in doc["components"].values():
        assert all(ID.match(k) for k in section)


def test_one_channel_per_routing_key(doc: dict[str, Any]) -> None:
    assert set(doc["channels"]) == {"nft.master.registered", "vstudio.vote.cast"}
    channel = doc["channels"]["nft.master.registered"]
    assert channel["address"] == "nft.master.registered"
    assert channel["bindings"]["amqp"] == {
        "is": "routingKey",
        "exchange": {
            "name": "audifi.events",
            "type": "topic",
            "durable": True,
            "autoDelete": False,
            "vhost": "/",
        },
        "bindingVersion": "0.3.0",
    }
    assert channel["messages"] == {
        "v1": {"$ref": "#/components/messages/nft.master.registered.v1"},
        "v2": {"$ref": "#/components/messages/nft.master.registered.v2"},
    }
    assert list(doc["channels"]["vstudio.vote.cast"]["messages"]) == ["v1"]


def test_messages_per_key_and_version(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    assert set(messages) == {
        "nft.master.registered.v1",
        "nft.master.registered.v2",
        "vstudio.vote.cast.v1",
    }
    v1, v2 = messages["nft.master.registered.v1"], messages["nft.master.registered.v2"]
    assert v1["name"] == "nft.master.registered.v1"
    assert v1["title"] == "MasterRegistered (v1)"
    assert v1["summary"] == "A master recording was registered by its artist."
    assert "description" not in v1
    assert v2["summary"] == "A master recording was registered by its artist, with its genre."
    assert "drops the ISRC" in v2["description"]
    assert v1["contentType"] == "application/json"
    assert v1["payload"] == {"$ref": "#/components/schemas/MasterRegistered"}
    assert v2["payload"] == {"$ref": "#/components/schemas/MasterRegisteredV2"}
    assert v1["bindings"]["amqp"] == {
        "messageType": "nft.master.registered",
        "bindingVersion": "0.3.0",
    }
    headers = v2["headers"]
    assert headers["type"] == "object"
    assert set(headers["properties"]) == {"causation_id", "schema_version", "traceparent"}
    assert headers["properties"]["schema_version"]["const"] == 2
    assert headers["required"] == ["schema_version"]


def test_payload_schemas(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert set(schemas) == {"MasterRegistered", "MasterRegisteredV2", "Split", "VoteCast"}
    master = schemas["MasterRegistered"]
    assert master["type"] == "object"
    props = master["properties"]
    assert props["masterId"] == {"type": "string", "format": "uuid"}  # camelCase names
    assert props["totalShares"] == {"type": "integer"}
    assert props["pricePerShare"] == {"type": "string", "format": "decimal"}  # never a float
    assert props["registeredAt"] == {"type": "string", "format": "date-time"}
    assert props["isrc"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert props["splits"]["items"] == {"$ref": "#/components/schemas/Split"}
    assert set(master["required"]) == {
        "masterId",
        "title",
        "totalShares",
        "pricePerShare",
        "currency",
        "registeredAt",
    }
    assert "routingKey" not in props and "schemaVersion" not in props
    assert schemas["Split"]["properties"]["shareBps"] == {"type": "integer"}
    # a plain `datetime` (no Meta(tz=True)) gets no date-time format from msgspec
    assert schemas["VoteCast"]["properties"]["castAt"] == {"type": "string"}


def test_payload_schemas_validate_real_events(doc: dict[str, Any]) -> None:
    for event in _samples():
        event_type = reg.type_of(event)
        message_id = f"{event_type.routing_key}.v{event_type.schema_version}"
        message = doc["components"]["messages"][message_id]
        body = json.loads(encode(event))
        _validate(doc, message["payload"], body)
        headers = {
            "schema_version": event_type.schema_version,
            "causation_id": "nft-41",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        }
        _validate(doc, message["headers"], headers)

    v1 = doc["components"]["messages"]["nft.master.registered.v1"]
    body = json.loads(encode(_samples()[0]))
    for broken in (
        {**body, "masterId": "nope"},
        {**body, "pricePerShare": 12.5},
        {k: v for k, v in body.items() if k != "currency"},
        {**body, "splits": [{"walletAddress": "0x"}]},
    ):
        with pytest.raises(AssertionError):
            _validate(doc, v1["payload"], broken)
    with pytest.raises(AssertionError):  # a v1 message does not carry schema_version 2
        _validate(doc, v1["headers"], {"schema_version": 2})


def test_one_send_operation_per_channel_from_the_producer(doc: dict[str, Any]) -> None:
    ops = doc["operations"]
    assert set(ops) == {"nft.send.nft.master.registered", "vstudio.send.vstudio.vote.cast"}
    op = ops["nft.send.nft.master.registered"]
    assert op["action"] == "send"
    assert op["channel"] == {"$ref": "#/channels/nft.master.registered"}
    assert op["messages"] == [
        {"$ref": "#/channels/nft.master.registered/messages/v1"},
        {"$ref": "#/channels/nft.master.registered/messages/v2"},
    ]
    assert op["tags"] == [{"name": "nft"}]
    assert op["bindings"]["amqp"]["deliveryMode"] == 2
    assert ops["vstudio.send.vstudio.vote.cast"]["tags"] == [{"name": "vstudio"}]


def test_an_empty_registry_is_a_valid_document() -> None:
    empty = asyncapi_document(Registry())
    assert empty["channels"] == {} and empty["operations"] == {}
    assert empty["components"] == {"messages": {}, "schemas": {}}


# --------------------------------------------------------------------------- load_all and CLI


def test_load_all_imports_every_submodule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = f"probe_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{probe}.py").write_text("LOADED = True\n")
    monkeypatch.setattr(audifi_events, "__path__", [*audifi_events.__path__, str(tmp_path)])
    try:
        names = load_all()
        assert {"audifi_events.registry", "audifi_events.asyncapi"} <= set(names)
        assert f"audifi_events.{probe}" in names
        assert sys.modules[f"audifi_events.{probe}"].LOADED
    finally:
        sys.modules.pop(f"audifi_events.{probe}", None)


def test_cli_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "asyncapi.json"
    assert main(["asyncapi", "--output", str(out), "--host", "mq:5672"]) == 0
    written = json.loads(out.read_text())
    assert written["asyncapi"] == "3.0.0"
    assert written["servers"]["production"]["host"] == "mq:5672"
    assert written == asyncapi_document(audifi_events.registry, host="mq:5672")


def test_cli_prints_json_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["asyncapi"]) == 0
    assert json.loads(capsys.readouterr().out)["info"]["title"] == "AudiFi integration events"


def test_cli_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "asyncapi.yaml"
    if importlib.util.find_spec("yaml") is None:
        with pytest.raises(SystemExit) as info:
            main(["asyncapi", "--format", "yaml", "--output", str(out)])
        assert info.value.code == 2
        assert "PyYAML" in capsys.readouterr().err
        assert not out.exists()
    else:
        import yaml

        assert main(["asyncapi", "--format", "yaml", "--output", str(out)]) == 0
        assert yaml.safe_load(out.read_text())["asyncapi"] == "3.0.0"


def test_cli_rejects_unknown_commands() -> None:
    with pytest.raises(SystemExit):
        main(["openapi"])
