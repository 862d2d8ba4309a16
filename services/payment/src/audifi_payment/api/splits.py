"""Split rules (treasury): `GET/POST /split-rules`, `PUT/DELETE /split-rules/{ruleId}`.

Recipients share each paid charge of the owner's products in basis points that sum to exactly
10,000 (anything else is a 400 naming `recipients`); the owner's default rule applies, or 100 %
to the owner without one. Only the owner (or an admin) sees and changes their rules.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from audifi_kit.errors import Forbidden, NotFound
from audifi_kit.fields import UuidText
from audifi_kit.http import Identity
from audifi_kit.http.fields import query_parameter
from litestar import Controller, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from audifi_payment import queries
from audifi_payment.api.dependencies import PaymentContext, is_admin, pool, provide_payment
from audifi_payment.domain.split_rule import SplitRule, SplitRuleName
from audifi_payment.queries import SplitRecipient, SplitRuleView


class NotYourRules(Forbidden):
    default_message = "Only the owner (or an admin) may read these split rules"


class Recipient(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    recipient_id: UuidText
    basis_points: Annotated[int, msgspec.Meta(ge=1, le=10_000, description="1 = 0.01 %")]


class SplitRuleDefinition(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    name: SplitRuleName
    recipients: Annotated[list[Recipient], msgspec.Meta(min_length=1, max_length=20)]
    is_default: bool = False
    owner_id: UuidText | None = None  # an admin defining a rule for an owner


class SplitRuleList(msgspec.Struct, rename="camel", kw_only=True):
    items: list[SplitRuleView]
    next_cursor: str | None = None


def rule_view(rule: SplitRule) -> SplitRuleView:
    return SplitRuleView(
        id=rule.id,
        owner_id=rule.owner_id,
        name=rule.name,
        recipients=[SplitRecipient(recipient_id=r, basis_points=bps) for r, bps in rule.recipients],
        is_default=rule.is_default,
        created_at=rule.defined_at,
        updated_at=rule.revised_at,
    )


def _recipients(data: SplitRuleDefinition) -> list[tuple[str, int]]:
    return [(str(UUID(r.recipient_id)), r.basis_points) for r in data.recipients]


class SplitRuleController(Controller):
    path = "/split-rules"
    dependencies = {"payment": Provide(provide_payment)}

    @get("/", raises=(NotYourRules,))
    async def list_rules(
        self,
        state: State,
        identity: NamedDependency[Identity],
        ownerId: Annotated[
            str | None, query_parameter(UuidText, description="Whose rules (an admin's view)")
        ] = None,
    ) -> SplitRuleList:
        """The caller's split rules (an admin may name another owner)."""
        owner = str(UUID(ownerId)) if ownerId else identity.user_id
        if owner != identity.user_id and not is_admin(identity):
            raise NotYourRules()
        return SplitRuleList(items=await queries.split_rules_of(pool(state), owner))

    @post("/", status_code=201, raises=(Forbidden,))
    async def define(
        self,
        data: JSONBody[SplitRuleDefinition],
        identity: NamedDependency[Identity],
        payment: NamedDependency[PaymentContext],
    ) -> SplitRuleView:
        """A split rule; `isDefault` makes it the one applied to the owner's charges."""
        admin = is_admin(identity)
        owner = str(UUID(data.owner_id)) if admin and data.owner_id else identity.user_id
        rule = await payment.store.call(
            payment.app.define_split_rule,
            owner,
            data.name,
            _recipients(data),
            is_default=data.is_default,
            at=datetime.now(UTC),
            by=identity.user_id,
            admin=admin,
        )
        return rule_view(rule)

    @put("/{rule_id:uuid}", raises=(NotFound, Forbidden))
    async def revise(
        self,
        rule_id: FromPath[UUID],
        data: JSONBody[SplitRuleDefinition],
        identity: NamedDependency[Identity],
        payment: NamedDependency[PaymentContext],
    ) -> SplitRuleView:
        """Replaces the whole rule (name, recipients, default)."""
        rule = await payment.store.call(
            payment.app.revise_split_rule,
            rule_id,
            data.name,
            _recipients(data),
            is_default=data.is_default,
            at=datetime.now(UTC),
            by=identity.user_id,
            admin=is_admin(identity),
        )
        return rule_view(rule)

    @delete("/{rule_id:uuid}", status_code=204, raises=(NotFound, Forbidden))
    async def remove(
        self,
        rule_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        payment: NamedDependency[PaymentContext],
    ) -> None:
        """Deletes the rule; without a default, the owner's charges go 100 % to the owner."""
        await payment.store.call(
            payment.app.remove_split_rule,
            rule_id,
            at=datetime.now(UTC),
            by=identity.user_id,
            admin=is_admin(identity),
        )
