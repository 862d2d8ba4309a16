"""Stripe Connect accounts and their onboarding page.

An account starts with nothing submitted and charges disabled. `POST /v1/account_links`
answers with `url` = our onboarding page `/onboard/{acct}`, where a person either completes
onboarding (details submitted, charges and payouts enabled) or has it rejected
(`requirements.disabled_reason` = "rejected.other"); either way account.updated is sent and
the person is sent on to the link's `return_url`.
"""

from __future__ import annotations

import copy
from html import escape
from typing import Any

from aiohttp import web

from audifi_stripe_local import pages
from audifi_stripe_local.api import answer, metadata, only, params, public_base, read_routes, text
from audifi_stripe_local.errors import invalid
from audifi_stripe_local.store import Obj, Store, new_id

DUE = ["business_type", "external_account", "tos_acceptance.date", "tos_acceptance.ip"]
WATCHED = (
    "details_submitted",
    "charges_enabled",
    "payouts_enabled",
    "requirements",
    "capabilities",
)


def requirements(due: list[str], disabled_reason: str | None) -> dict[str, Any]:
    return {
        "currently_due": list(due),
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": [],
        "errors": [],
        "alternatives": [],
        "current_deadline": None,
        "disabled_reason": disabled_reason,
    }


class Connect:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, data: dict[str, Any]) -> Obj:
        only(
            data,
            (
                "type",
                "email",
                "country",
                "metadata",
                "business_type",
                "capabilities",
                "default_currency",
            ),
        )
        kind = text(data, "type", needed=True)
        if kind not in ("express", "standard", "custom"):
            raise invalid("type", "Invalid type: must be one of express, standard or custom")
        wanted = data.get("capabilities") or {}
        return self.store.add(
            {
                "id": new_id("acct_"),
                "object": "account",
                "type": kind,
                "email": text(data, "email"),
                "country": text(data, "country") or "US",
                "default_currency": text(data, "default_currency") or "usd",
                "business_type": text(data, "business_type"),
                "details_submitted": False,
                "charges_enabled": False,
                "payouts_enabled": False,
                "capabilities": {name: "inactive" for name in wanted},
                "requirements": requirements(DUE, "requirements.past_due"),
                "metadata": metadata(data.get("metadata")),
                "created": self.store.now(),
                "_link": {},
            }
        )

    def update(self, account: Obj, data: dict[str, Any]) -> Obj:
        only(data, ("email", "metadata"))
        previous = {"email": account["email"], "metadata": account["metadata"]}
        account.update(
            email=text(data, "email") or account["email"],
            metadata=metadata(data.get("metadata"), current=account["metadata"]),
        )
        changed = {k: v for k, v in previous.items() if account[k] != v}
        if changed:
            self.store.emit("account.updated", account, changed)
        return account

    def link(self, data: dict[str, Any], base: str) -> Obj:
        only(data, ("account", "refresh_url", "return_url", "type", "collect"))
        account = self.store.get(text(data, "account", needed=True), "account", "account")
        if text(data, "type", needed=True) not in ("account_onboarding", "account_update"):
            raise invalid("type", "Invalid type: must be account_onboarding or account_update")
        account["_link"] = {
            "return_url": data.get("return_url"),
            "refresh_url": data.get("refresh_url"),
        }
        now = self.store.now()
        return {
            "object": "account_link",
            "created": now,
            "expires_at": now + 300,
            "url": f"{base}/onboard/{account['id']}",
        }

    def decide(self, account: Obj, decision: str) -> None:
        previous = {key: copy.deepcopy(account[key]) for key in WATCHED}
        enabled = decision == "complete"
        capabilities = list(account["capabilities"]) or ["card_payments", "transfers"]
        account.update(
            details_submitted=True,
            charges_enabled=enabled,
            payouts_enabled=enabled,
            requirements=requirements([], None if enabled else "rejected.other"),
            capabilities={name: "active" if enabled else "inactive" for name in capabilities},
        )
        self.store.emit(
            "account.updated", account, {k: v for k, v in previous.items() if account[k] != v}
        )

    def page(self, account: Obj, message: str = "", status: int = 200) -> web.Response:
        state = (
            "Onboarding complete: charges and payouts are enabled."
            if account["charges_enabled"]
            else "Rejected."
            if account["requirements"]["disabled_reason"] == "rejected.other"
            else "Waiting for your details."
        )
        action = f"/onboard/{account['id']}"
        body = (
            f"{message}<p class='muted'>{escape(account['email'] or account['id'])}</p>"
            f"<div class='box'>{state}</div>"
            f"<form method='post' action='{action}'><input type='hidden' name='decision' "
            "value='complete'><button>Complete onboarding</button></form>"
            f"<form method='post' action='{action}'><input type='hidden' name='decision' "
            "value='reject'><button class='secondary'>Reject this account</button></form>"
            "<p class='muted'>Test mode: no details are asked; choose the outcome.</p>"
        )
        return pages.page("Set up payouts", body, status)

    def routes(self) -> list[web.RouteDef]:
        store = self.store

        async def create(request: web.Request) -> web.Response:
            data = await params(request)
            expand = data.pop("expand", None)
            return answer(store.render(self.create(data), expand))

        async def update(request: web.Request) -> web.Response:
            data = await params(request)
            expand = data.pop("expand", None)
            account = store.get(request.match_info["id"], "account")
            return answer(store.render(self.update(account, data), expand))

        async def link(request: web.Request) -> web.Response:
            return answer(self.link(await params(request), public_base(request)))

        async def onboarding(request: web.Request) -> web.Response:
            account = store.objects.get(request.match_info["id"])
            if account is None or account["object"] != "account":
                return pages.page("Not found", pages.notice("No such account."), 404)
            if request.method == "GET":
                return self.page(account)
            decision = (await request.post()).get("decision")
            if decision not in ("complete", "reject"):
                return self.page(account, pages.notice("Choose complete or reject."), 400)
            self.decide(account, str(decision))
            back = account["_link"].get("return_url")
            if back:
                raise web.HTTPSeeOther(back)
            return self.page(account, pages.notice("Saved.", "ok"))

        return [
            web.post("/v1/accounts", create),
            web.post("/v1/accounts/{id}", update),
            *read_routes(store, "account", "/v1/accounts"),
            web.post("/v1/account_links", link),
            web.get("/onboard/{id}", onboarding),
            web.post("/onboard/{id}", onboarding),
        ]
