"""`GET /dev/mail`: what the local SMTP sink received, newest first (served only with the sink)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.params import QueryParameter

from audifi_notify.sink import MailSink

SINK_STATE = "notify_mail_sink"


class ReceivedMailView(msgspec.Struct, rename="camel"):
    to: str
    subject: str
    text: str
    html: str
    received_at: datetime


@get("/dev/mail", opt={"public": True}, sync_to_thread=False)
def dev_mail(
    state: State, to: Annotated[str | None, QueryParameter()] = None
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
