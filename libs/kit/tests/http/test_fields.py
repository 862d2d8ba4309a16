"""The kit's field types: one rule, enforced by the decoder, shown by the schema, checkable by
a domain — and every value the schema's pattern allows is one the type accepts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import uuid4

import msgspec
import pytest
from audifi_kit.errors import ValidationFailed
from audifi_kit.fields import (
    Cursor,
    EmailAddress,
    EvmAddress,
    ListOf,
    MappingOf,
    MultiLineText,
    SingleLineText,
    SolanaAddress,
    Token,
    TotpCode,
    UuidText,
    WalletAddress,
    check,
    rule_of,
    text_type,
)
from audifi_kit.http import create_service_app
from audifi_kit.http.fields import query_parameter
from audifi_kit.paging import Position, decode_cursor, encode_cursor
from audifi_kit.settings import Settings
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import get, put
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient

CONTROL_CHARACTERS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]
Name = SingleLineText(10, description="A name")
Key = text_type("[a-z]+", max_length=8, description="A key")
Note = MultiLineText(50)
Tags = ListOf(SingleLineText(5), max_length=3)
Flags = MappingOf(Key, bool, max_length=2)


class Form(msgspec.Struct, rename="camel", kw_only=True):
    display_name: Name | None = None
    note: Note = ""
    tags: Tags = []
    flags: Flags = {}


@put("/form", opt={"public": True})
async def put_form(data: JSONBody[Form]) -> Form:
    return data


@get("/page", opt={"public": True})
async def page(cursor: Annotated[str | None, query_parameter(Cursor)] = None) -> str:
    return "first" if cursor is None else decode_cursor(cursor).at.isoformat()


@pytest.fixture
async def client():
    app = create_service_app("fields", route_handlers=[put_form, page], settings=Settings())
    async with AsyncTestClient(app=app) as client:
        yield client


def _refused(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    [field] = response.json()["error"]["details"]["fields"]
    return field


# --- the decoder ------------------------------------------------------------------------


async def test_one_line_text_refuses_every_control_character_naming_the_field(client) -> None:
    for c in CONTROL_CHARACTERS:
        field = _refused(await client.put("/form", json={"displayName": f"a{c}b"}))
        assert field["field"] == "displayName", repr(c)
    # Python's `$` matches before a final newline: the pattern must not.
    assert _refused(await client.put("/form", json={"displayName": "name\n"}))


async def test_multi_line_text_keeps_line_breaks_and_tabs_only(client) -> None:
    kept = await client.put("/form", json={"note": "one\r\ntwo\tthree\n"})
    assert kept.status_code == 200 and kept.json()["note"] == "one\r\ntwo\tthree\n"
    for c in set(CONTROL_CHARACTERS) - {"\t", "\n", "\r"}:
        assert _refused(await client.put("/form", json={"note": c}))["field"] == "note"


async def test_lengths_count_characters_and_are_refused_not_cut(client) -> None:
    kept = await client.put("/form", json={"displayName": "é" * 10})
    assert kept.status_code == 200 and kept.json()["displayName"] == "é" * 10
    for too_long in ("x" * 11, "x" * 100_000):
        assert _refused(await client.put("/form", json={"displayName": too_long}))


async def test_list_items_and_mapping_keys_have_their_rules(client) -> None:
    cases = [
        ({"tags": ["ok", "a\x00"]}, "tags[1]"),
        ({"tags": ["a", "b", "c", "d"]}, "tags"),
        ({"flags": {"UPPER": True}}, "flags"),
        ({"flags": {"a": True, "b": True, "c": True}}, "flags"),
    ]
    for body, where in cases:
        assert _refused(await client.put("/form", json=body))["field"] == where, body
    kept = await client.put("/form", json={"tags": ["a", "b"], "flags": {"ab": False}})
    assert kept.status_code == 200, kept.text


async def test_a_lone_surrogate_never_reaches_a_field(client) -> None:
    response = await client.put(
        "/form",
        content=b'{"displayName": "a\\ud800b"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_a_query_parameter_is_held_to_its_type(client) -> None:
    assert _refused(await client.get("/page", params={"cursor": "x\x00"}))["source"] == "query"
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    answered = await client.get("/page", params={"cursor": encode_cursor(Position(at, uuid4()))})
    assert answered.status_code == 200 and answered.text == at.isoformat()


# --- the schema -------------------------------------------------------------------------


async def test_the_schema_shows_each_rule_where_the_value_sits(client) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    form = document["components"]["schemas"]["Form"]["properties"]
    assert form["displayName"]["maxLength"] == 10
    assert form["displayName"]["pattern"] == rule_of(Name).pattern
    assert form["displayName"]["description"].startswith("A name (one line")
    assert form["tags"]["maxItems"] == 3
    assert form["tags"]["items"]["maxLength"] == 5 and "pattern" in form["tags"]["items"]
    assert form["flags"]["maxProperties"] == 2
    assert form["flags"]["propertyNames"] == {"pattern": rule_of(Key).pattern, "maxLength": 8}
    [cursor] = document["paths"]["/page"]["get"]["parameters"]
    assert cursor["schema"]["pattern"] == rule_of(Cursor).pattern
    assert cursor["schema"]["maxLength"] == rule_of(Cursor).max_length


def test_patterns_are_ones_ecma_262_reads_the_same() -> None:
    """No `$` (Python lets a final newline past it), no inline flags, no \\A or \\Z."""
    for field_type in (Name, EmailAddress, WalletAddress, UuidText, Cursor, Token):
        pattern = rule_of(field_type).pattern
        assert pattern.startswith("^") and pattern.endswith(r"(?![\s\S])")
        outside_classes = re.sub(r"\[(?:\\.|[^\]\\])*\]", "", pattern)
        assert not re.search(r"\$|\(\?[aiLmsux]|\\[AZz]", outside_classes), pattern


def test_query_parameter_wants_a_field_type() -> None:
    with pytest.raises(TypeError):
        query_parameter(str)


# --- the domain's check -----------------------------------------------------------------


def test_check_answers_as_the_decoder_would() -> None:
    assert check(Name, "Ada", field="displayName") == "Ada"
    with pytest.raises(ValidationFailed) as refused:
        check(Name, "a\x00", field="displayName")
    assert refused.value.status_code == 400
    assert refused.value.details["fields"][0]["field"] == "displayName"
    with pytest.raises(ValidationFailed):
        check(Name, 42, field="displayName")


# --- what each pattern allows, the type accepts ------------------------------------------


def _allowed(field_type: Any) -> st.SearchStrategy[str]:
    rule = rule_of(field_type)
    low, high = rule.min_length or 0, rule.max_length
    return st.from_regex(rule.pattern).filter(lambda s: low <= len(s) <= high)


TYPES = {
    "SingleLineText": Name,
    "EmailAddress": EmailAddress,
    "EvmAddress": EvmAddress,
    "SolanaAddress": SolanaAddress,
    "WalletAddress": WalletAddress,
    "UuidText": UuidText,
    "TotpCode": TotpCode,
    "Token": Token,
    "Cursor": Cursor,
}


@pytest.mark.parametrize("field_type", TYPES.values(), ids=TYPES.keys())
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_every_value_a_pattern_allows_is_accepted(field_type: Any, data: st.DataObject) -> None:
    value = data.draw(_allowed(field_type))
    assert check(field_type, value, field="f") == value
