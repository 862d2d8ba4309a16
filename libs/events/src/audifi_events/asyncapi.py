"""The published language as an AsyncAPI 3.0.0 document, and the `audifi-events` CLI.

One channel per routing key (its address; ARCHITECTURE §5.3) on the topic exchange
`audifi.events`, one message per (routing key, schema version) whose payload is the msgspec
JSON Schema of the event Struct, and one `send` operation per channel seen from the producing
service (the key's first segment). Shared Struct schemas live under `components.schemas`.

    audifi-events asyncapi [--format json|yaml] [--output FILE] [--host HOST:PORT]
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

import audifi_events
from audifi_events.registry import EventType, Registry, registry

ASYNCAPI_VERSION = "3.0.0"
TITLE = "AudiFi integration events"
EXCHANGE = "audifi.events"
AMQP_BINDING_VERSION = "0.3.0"
DEFAULT_HOST = "localhost:5672"
SCHEMA_REF = "#/components/schemas/{name}"
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


def load_all() -> list[str]:
    """Import every submodule of `audifi_events`, registering every event; return their names.

    Walks the package with pkgutil, so a new producer module (audifi_events.nft, ...) is
    picked up without being listed anywhere.
    """
    names = []
    for info in pkgutil.walk_packages(audifi_events.__path__, prefix="audifi_events."):
        importlib.import_module(info.name)
        names.append(info.name)
    return names


def asyncapi_document(registry: Registry = registry, *, host: str | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every event in `registry`.

    `host` fills the `production` server; without it the server's host is the `{host}`
    variable (default localhost:5672), to be substituted by whoever deploys.
    """
    event_types = list(registry)
    by_key: dict[str, list[EventType]] = {}
    for event_type in event_types:
        by_key.setdefault(event_type.routing_key, []).append(event_type)

    payloads, schemas = msgspec.json.schema_components(
        [t.struct for t in event_types], ref_template=SCHEMA_REF
    )
    payload_of = {t.struct: p for t, p in zip(event_types, payloads, strict=True)}

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for key, versions in by_key.items():
        producer = versions[0].producer
        senders = versions[0].senders
        channel_messages = {}
        for event_type in versions:
            message_id = _message_id(event_type)
            messages[message_id] = _message(event_type, payload_of[event_type.struct])
            channel_messages[f"v{event_type.schema_version}"] = {
                "$ref": f"#/components/messages/{message_id}"
            }
        channels[key] = {
            "address": key,
            "title": key,
            "description": (
                f"Requests `{key}` sent to the {producer} service by {', '.join(senders)}."
                if senders
                else f"Events `{key}` published by the {producer} service."
            ),
            "messages": channel_messages,
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": EXCHANGE,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        }
        refs = [{"$ref": f"#/channels/{key}/messages/{v}"} for v in channel_messages]
        for sender in senders or (producer,):
            operations[f"{sender}.send.{key}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{key}"},
                "title": f"{sender} publishes {key}",
                "summary": (
                    f"The {sender} service's outbox relay publishes {key} with publisher "
                    "confirms, at least once; consumers deduplicate by message id."
                ),
                "messages": refs,
                "tags": [{"name": sender}],
                "bindings": {
                    "amqp": {
                        "deliveryMode": 2,  # persistent
                        "timestamp": True,
                        "bindingVersion": AMQP_BINDING_VERSION,
                    }
                },
            }
        if senders:
            operations[f"{producer}.receive.{key}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{key}"},
                "title": f"{producer} takes {key}",
                "summary": f"The {producer} service consumes {key}, once per message id.",
                "messages": refs,
                "tags": [{"name": producer}],
            }

    server: dict[str, Any] = {
        "host": host or "{host}",
        "protocol": "amqp",
        "protocolVersion": "0.9.1",
        "title": "RabbitMQ",
        "description": f"The broker; every event goes through the topic exchange `{EXCHANGE}`.",
    }
    if host is None:
        server["variables"] = {
            "host": {"default": DEFAULT_HOST, "description": "RabbitMQ host:port (AMQP_URL)."}
        }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": TITLE,
            "version": _version(),
            "description": (
                "Every integration event the AudiFi services publish. Routing key "
                "`<service>.<aggregate>.<event>` = AMQP `type`; body = camelCase JSON of the "
                "event; header `schema_version` says which version of the body it is. "
                "Money is minor units or decimal strings with a currency; times are UTC."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {"production": server},
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
        },
    }


def _message_id(event_type: EventType) -> str:
    return f"{event_type.routing_key}.v{event_type.schema_version}"


def _message(event_type: EventType, payload: dict[str, Any]) -> dict[str, Any]:
    doc = event_type.summary
    summary = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    message: dict[str, Any] = {
        "name": _message_id(event_type),
        "title": f"{event_type.struct.__name__} (v{event_type.schema_version})",
        "summary": summary or f"{event_type.routing_key} v{event_type.schema_version}",
    }
    if doc and doc != summary:
        message["description"] = doc
    message.update(
        {
            "contentType": "application/json",
            "headers": _headers(event_type.schema_version),
            "payload": payload,
            "tags": [{"name": event_type.producer}],
            "bindings": {
                "amqp": {
                    "messageType": event_type.routing_key,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        }
    )
    return message


def _headers(version: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "causation_id": {
                "type": "string",
                "description": "Id of the message or command that caused this event.",
            },
            "schema_version": {
                "type": "integer",
                "const": version,
                "description": "Version of the body's schema (with the routing key).",
            },
            "traceparent": {
                "type": "string",
                "pattern": TRACEPARENT_PATTERN,
                "description": "W3C trace context of the publishing span.",
            },
        },
        "required": ["schema_version"],
    }


def _version() -> str:
    try:
        return metadata.version("audifi-events")
    except metadata.PackageNotFoundError:
        return "0.0.0"


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="audifi-events", description="AudiFi's published language."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("asyncapi", help="print the AsyncAPI 3.0.0 document")
    export.add_argument("--format", choices=("json", "yaml"), default="json")
    export.add_argument("--output", "-o", type=Path, help="write here instead of stdout")
    export.add_argument("--host", help="the AMQP server's host:port (default: a {host} variable)")
    args = parser.parse_args(argv)

    load_all()
    document = asyncapi_document(registry, host=args.host)
    if args.format == "yaml":
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            parser.error("--format yaml needs PyYAML, which is not installed: use json")
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    else:
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
