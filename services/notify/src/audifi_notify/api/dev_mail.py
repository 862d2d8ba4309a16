"""`GET /dev/mail`: what the local SMTP sink received, newest first (served only with the sink).

A development tool: the mail holds every magic link, so it answers only a caller on this
machine. That is the TCP peer (uvicorn's `client`, which a trusted proxy's X-Forwarded-For may
have resolved) and every address a proxy on the way named: through the gateway the peer is
the gateway, and the gateway names its own client in X-Forwarded-For, so a developer's browser
on loopback is served while anyone else, directly or through the gateway, gets the 404 a
deployment without the sink answers. A header a client wrote itself can only name more
addresses: it can get a caller refused, never let one in.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Any

import msgspec
from audifi_kit.errors import NotFound
from audifi_kit.fields import EmailAddress
from audifi_kit.http.fields import query_parameter
from litestar import get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler

from audifi_notify.adapters.sink import MailSink

SINK_STATE = "notify_mail_sink"


class ReceivedMailView(msgspec.Struct, rename="camel"):
    to: str
    subject: str
    text: str
    html: str
    received_at: datetime


def _loopback(address: str) -> bool:
    address = address.strip().strip('"')
    if address.startswith("["):  # "[::1]:8080" (RFC 7239 quotes IPv6 with its port)
        address = address[1:].partition("]")[0]
    elif address.count(":") == 1:  # "127.0.0.1:8080"
        address = address.partition(":")[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # "unknown", an obfuscated node name, garbage: not provably local
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _named_by_proxies(connection: ASGIConnection[Any, Any, Any, Any]) -> list[str]:
    named = []
    for value in connection.headers.getall("x-forwarded-for", []):
        named += value.split(",")
    named += connection.headers.getall("x-real-ip", [])
    for value in connection.headers.getall("forwarded", []):  # RFC 7239: for=<node>
        for element in value.replace(",", ";").split(";"):
            key, _, node = element.strip().partition("=")
            if key.lower() == "for":
                named.append(node)
    return named


def from_this_machine(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the caller and every hop it came through are on loopback, or 404."""
    peer = connection.client.host if connection.client else ""
    if not all(_loopback(a) for a in [peer, *_named_by_proxies(connection)]):
        raise NotFound("No such route")


@get("/dev/mail", opt={"public": True}, guards=[from_this_machine], sync_to_thread=False)
def dev_mail(
    state: State,
    to: Annotated[
        str | None, query_parameter(EmailAddress, description="Only the mail sent to this address")
    ] = None,
) -> list[ReceivedMailView]:
    sink: MailSink = state[SINK_STATE]
    return [
        ReceivedMailView(
            to=", ".join(m.to),
            subject=m.subject,
            text=m.text,
            html=m.html,
            received_at=m.received_at,
        )
        for m in sink.received(to)
    ]
