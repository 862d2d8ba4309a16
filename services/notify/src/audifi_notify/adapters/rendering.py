"""E-mails from the Jinja2 templates in `templates/`: a subject, a text and an HTML part each.

`<template>.subject.txt`, `<template>.txt` and `<template>.html`; HTML is autoescaped, so a
display name or any other value can never inject markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from audifi_notify.domain import Template

TEMPLATES_DIR = Path(__file__).parent.parent / "templates"


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text: str
    html: str

    def message(self, *, sender: str, to: str, to_name: str | None = None) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = formataddr((to_name, to)) if to_name else to
        msg["Subject"] = self.subject
        msg["Message-ID"] = make_msgid(domain="audifi.local")
        msg.set_content(self.text)
        msg.add_alternative(self.html, subtype="html")
        return msg


class MailTemplates:
    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=False,
        )

    def render(self, template: Template, **params: Any) -> RenderedMail:
        name = Template(template).value
        return RenderedMail(
            subject=self.env.get_template(f"{name}.subject.txt").render(**params).strip(),
            text=self.env.get_template(f"{name}.txt").render(**params).strip() + "\n",
            html=self.env.get_template(f"{name}.html").render(**params).strip() + "\n",
        )
