"""The web side of the field rules in `audifi_kit.fields`: query parameters and the schema.

The rules themselves (the types, `check`) live in `audifi_kit.fields`, which a domain may
import without Litestar; they are re-exported here for code that already imports them from this
module. What needs Litestar is here:

* `query_parameter(Type)`: Litestar rebuilds a query parameter's type from `Parameter(...)`
  constraints and drops a `Meta` nested inside `X | None`, so declare one as
  `Annotated[str | None, query_parameter(Type)]`;
* `FieldRuleSchemas`: Litestar shows a `msgspec.Meta` only on a struct's own field; this schema
  plugin shows it wherever the type sits (a list's items, a union's arm, a mapping's values),
  so the schema states every rule the decoder enforces.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.openapi.spec import Example
from litestar.params import KwargDefinition, QueryParameter
from litestar.plugins import OpenAPISchemaPlugin

from audifi_kit.fields import (
    rule_of,
)

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Reference, Schema
    from litestar.typing import FieldDefinition


def query_parameter(field_type: Any, **kwargs: Any) -> QueryParameter:
    """A query parameter holding `field_type`: `Annotated[str | None, query_parameter(T)]`;
    `kwargs` as QueryParameter's (`name=` when the query key differs from the argument)."""
    rule = rule_of(field_type)
    return QueryParameter(
        pattern=rule.pattern,
        min_length=rule.min_length,
        max_length=rule.max_length,
        description=kwargs.pop("description", rule.description),
        **kwargs,
    )


class FieldRuleSchemas(OpenAPISchemaPlugin):
    """Renders a type's `msgspec.Meta` as the schema's constraints wherever the type sits."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        # A struct's own field arrives with Litestar's reading of its Meta already made; any
        # other annotated type, with an empty definition or none.
        stated = field_definition.kwarg_definition
        return (stated is None or stated == type(stated)()) and any(
            isinstance(m, msgspec.Meta) for m in field_definition.metadata
        )

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema | Reference:  # type: ignore[override]
        rules: dict[str, Any] = {}
        others = []
        for meta in field_definition.metadata:
            if isinstance(meta, msgspec.Meta):
                rules.update(_constraints(meta, field_definition))
            else:
                others.append(meta)
        # Without the Meta the plugin no longer applies: Litestar renders the type as usual,
        # its constraints now stated the way it reads them.
        return schema_creator.for_field_definition(
            dataclasses.replace(
                field_definition,
                metadata=tuple(others),
                kwarg_definition=dataclasses.replace(stated, **rules)
                if (stated := field_definition.kwarg_definition) is not None
                else KwargDefinition(**rules),
            )
        )


def _constraints(meta: msgspec.Meta, field_definition: FieldDefinition) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if meta.title is not None:
        found["title"] = meta.title
    if meta.description is not None:
        found["description"] = meta.description
    if meta.examples:
        found["examples"] = [Example(value=example) for example in meta.examples]
    if meta.extra_json_schema and "extra" in meta.extra_json_schema:
        found["schema_extra"] = meta.extra_json_schema["extra"]
    if field_definition.is_subclass_of(str):
        found |= _present(meta, pattern="pattern", min_length="min_length", max_length="max_length")
    elif field_definition.is_non_string_sequence:
        found |= _present(meta, min_items="min_length", max_items="max_length")
    elif field_definition.is_subclass_of((int, float)):
        found |= _present(meta, gt="gt", ge="ge", lt="lt", le="le", multiple_of="multiple_of")
    # A mapping's size and key rule are schema extras (see `MappingOf`): JSON Schema's
    # maxLength is not a mapping's size.
    return found


def _present(meta: msgspec.Meta, **names: str) -> dict[str, Any]:
    return {
        kwarg: getattr(meta, attribute)
        for kwarg, attribute in names.items()
        if getattr(meta, attribute) is not None
    }


__all__ = ["FieldRuleSchemas", "query_parameter"]
