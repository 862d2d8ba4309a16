"""Accounts: `POST /auth/signup`, `POST /auth/login`, `GET/PUT/DELETE /users/me`, the admin's
`GET /users` and `POST /users/{id}/roles` (Bucket & MediaID; erasure from the treasury's GDPR)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from audifi_kit.fields import CONTROL, EmailAddress, text_type
from audifi_kit.http import Identity, require_roles
from audifi_kit.http.paging import DEFAULT_LIMIT, PageCursor, PageLimit, PageQuery
from audifi_kit.paging import Position, page_of
from email_validator import EmailNotValidError, validate_email
from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from audifi_auth.adapters.brute_force import Budget
from audifi_auth.adapters.passwords import MAX_LENGTH, MIN_LENGTH, Passwords, WeakPassword
from audifi_auth.api import refusals
from audifi_auth.api.dependencies import AuthContext, client_ip, provide_auth
from audifi_auth.api.signing_in import TokenResponse, TwoFactorRequired, outcome, tokens_for
from audifi_auth.application.errors import (
    AccountNotFound,
    InvalidCredentials,
    InvalidEmail,
    InvalidPassword,
    InvalidRole,
)
from audifi_auth.domain.account import DisplayName, Role, RoleUnknown, parse_role

PUBLIC = {"public": True}

NewPassword = text_type(
    f"[^{CONTROL}]*",
    min_length=MIN_LENGTH,
    max_length=MAX_LENGTH,
    description=f"{MIN_LENGTH} to {MAX_LENGTH} characters, without control characters",
)
Password = text_type(
    f"[^{CONTROL}]*",
    min_length=1,
    max_length=MAX_LENGTH,
    description=f"The account's password (at most {MAX_LENGTH} characters)",
)


def normalised_email(raw: str) -> str:
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidEmail() from None


class SignUp(msgspec.Struct, rename="camel"):
    email: EmailAddress
    password: NewPassword


class Credentials(msgspec.Struct, rename="camel"):
    email: EmailAddress
    password: Password


class UserView(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    email: str | None
    display_name: str | None
    roles: list[str]
    wallets: list[str]
    two_factor_enabled: bool
    created_at: datetime


class ProfileEdit(msgspec.Struct, rename="camel", kw_only=True):
    """`displayName`: trimmed; blank or null clears it."""

    display_name: DisplayName | None = None


class RoleGrant(msgspec.Struct, rename="camel"):
    role: Role


class UserPage(msgspec.Struct, rename="camel"):
    items: list[UserView]
    next_cursor: str | None


def _view(row: Any) -> UserView:
    return UserView(
        id=str(row["id"]),
        email=row["email"],
        display_name=row["display_name"],
        roles=sorted(row["roles"]),
        wallets=list(row["wallets"]),
        two_factor_enabled=row["two_factor"],
        created_at=row["created_at"],
    )


async def user_view(auth: AuthContext, account_id: UUID) -> UserView:
    row = await auth.runtime.pool.fetchrow(  # type: ignore[union-attr]
        "SELECT * FROM accounts.accounts WHERE id = $1 AND NOT erased", account_id
    )
    if row is None:
        raise AccountNotFound()
    return _view(row)


def _account_id(identity: Identity) -> UUID:
    try:
        return UUID(identity.user_id)
    except ValueError:
        raise AccountNotFound() from None


class AccountController(Controller):
    dependencies = {"auth": Provide(provide_auth)}

    @post("/auth/signup", opt=PUBLIC, status_code=201, raises=refusals.SIGN_UP)
    async def sign_up(
        self, data: JSONBody[SignUp], auth: NamedDependency[AuthContext], request: Request
    ) -> TokenResponse:
        email = normalised_email(data.email)
        try:
            Passwords.check_policy(data.password)
        except WeakPassword:
            raise InvalidPassword() from None
        await auth.guard.spend(Budget("signup-ip", client_ip(request), auth.config.per_ip_max))
        signed_in = await auth.run(auth.app.sign_up, email, data.password)
        return await tokens_for(auth, signed_in)

    @post("/auth/login", opt=PUBLIC, status_code=200, raises=refusals.LOG_IN)
    async def log_in(
        self, data: JSONBody[Credentials], auth: NamedDependency[AuthContext], request: Request
    ) -> TokenResponse | TwoFactorRequired:
        email = data.email.strip().lower()
        budgets = (
            Budget("login", auth.app.digest("email", email), auth.config.login_max_failures),
            Budget("login-ip", client_ip(request), auth.config.login_max_failures_per_ip),
        )
        await auth.guard.check(*budgets)
        try:
            result = await auth.run(auth.app.log_in, email, data.password)
        except InvalidCredentials:
            await auth.guard.fail(*budgets)
            raise
        return await outcome(auth, result)

    @get("/users/me", raises=refusals.OWN_ACCOUNT)
    async def me(
        self, identity: NamedDependency[Identity], auth: NamedDependency[AuthContext]
    ) -> UserView:
        return await user_view(auth, _account_id(identity))

    @put("/users/me", raises=refusals.OWN_ACCOUNT)
    async def edit_me(
        self,
        data: JSONBody[ProfileEdit],
        identity: NamedDependency[Identity],
        auth: NamedDependency[AuthContext],
    ) -> UserView:
        account_id = _account_id(identity)
        name = (data.display_name or "").strip() or None
        position = await auth.run(auth.app.edit_profile, account_id, name)
        await auth.settle(position)
        return await user_view(auth, account_id)

    @delete("/users/me", status_code=204, raises=refusals.OWN_ACCOUNT)
    async def erase_me(
        self, identity: NamedDependency[Identity], auth: NamedDependency[AuthContext]
    ) -> None:
        account_id = _account_id(identity)
        rows = await auth.runtime.pool.fetch(  # type: ignore[union-attr]
            "SELECT id FROM sessions.sessions WHERE account_id = $1 AND revoked_at IS NULL",
            account_id,
        )
        session_ids = {r["id"] for r in rows}
        if identity.session_id:
            try:
                session_ids.add(UUID(identity.session_id))
            except ValueError:
                pass
        position = await auth.run(auth.app.erase, account_id, sorted(session_ids))
        await auth.settle(position)

    @get("/users", guards=[require_roles("admin")])
    async def list_users(
        self,
        auth: NamedDependency[AuthContext],
        limit: PageLimit = DEFAULT_LIMIT,
        cursor: PageCursor = None,
    ) -> UserPage:
        """Accounts in the order they signed up."""
        query = PageQuery.parse(limit, cursor)
        condition, order, args = query.sql("created_at", "id", first_arg=1)
        rows = await auth.runtime.pool.fetch(  # type: ignore[union-attr]
            f"SELECT * FROM accounts.accounts WHERE NOT erased AND {condition} {order}", *args
        )
        page = page_of(rows, query, lambda r: Position(r["created_at"], r["id"]))
        return UserPage(items=[_view(r) for r in page.items], next_cursor=page.next_cursor)

    @post(
        "/users/{user_id:uuid}/roles",
        guards=[require_roles("admin")],
        status_code=200,
        raises=refusals.GRANT_ROLE,
    )
    async def grant_role(
        self,
        user_id: FromPath[UUID],
        data: JSONBody[RoleGrant],
        identity: NamedDependency[Identity],
        auth: NamedDependency[AuthContext],
    ) -> UserView:
        try:
            role = parse_role(data.role)
        except RoleUnknown:
            raise InvalidRole() from None
        position = await auth.run(auth.app.grant_role, user_id, role, _account_id(identity))
        await auth.settle(position)
        return await user_view(auth, user_id)
