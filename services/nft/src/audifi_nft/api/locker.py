"""Bucket's artist locker (N25-N27), camelCase: artist profiles and their content.

`PUT /artists/{id}` creates or edits the caller's artist profile (`id` is the artist's account
id); `GET /artists/{id}` reads it. The artist uploads an item with `POST /artists/{id}/content`
(multipart: `type` audio|video|image, which the file's own bytes must be, `title`,
`description`, `unlockDate`, optional `minTierId` (one of the artist's subscription tiers) and
`metadata` (a JSON object), and `file`); `PATCH /content/{id}` changes its unlock date, tier
or metadata. `GET /artists/{id}/content?status=unlocked|locked|all` lists what the caller may
see: for a fan, items whose unlock date has passed, `unlocked` those their subscription opens
(`locked` ones show what they are, never their file); the artist and admins see everything.
Hot lockers are read from the locker cache when the app has one (adapters/locker_cache.py:
the view's facts, the rule applied here with the app's clock), else from the view with the
rule in SQL; both answer the same.
`GET /content/{id}/download` answers the file to whom it is unlocked: a short-lived signed
URL (a redirect) when the media are in S3, the bytes when kept locally.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from audifi_kit.errors import (
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from audifi_kit.fields import check
from audifi_kit.http import Identity
from audifi_kit.http.paging import DEFAULT_LIMIT, PageCursor, PageLimit, PageQuery
from audifi_kit.media.kinds import MAX_UPLOAD_BYTES
from audifi_kit.media.s3 import S3Storage
from audifi_kit.paging import Position, page_of
from audifi_kit.values import invalid, moment
from litestar import Controller, get, patch, put
from litestar import post as post_route
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody, QueryParameter
from litestar.response import Redirect, Stream

from audifi_nft.adapters.locker_cache import (
    FanFacts,
    ItemFacts,
    LockerCache,
    LockerFacts,
    ViewFacts,
)
from audifi_nft.api.dependencies import NftContext, is_admin, is_artist, provide_nft
from audifi_nft.api.forms import chunks, json_object_field
from audifi_nft.domain.locker import (
    MEDIA_TYPES,
    ArtistProfile,
    ContentNotFound,
    ItemDescription,
    ItemTitle,
    NotYourLocker,
)
from audifi_nft.projections.locker import ITEMS, OPENS, TIERS, VISIBLE, access_sql

MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 8
CONTENT_BODY_BYTES = MAX_UPLOAD_BYTES + 64 * 1024  # the file and the form's fields
DOWNLOAD_SECONDS = 300


class ProfileRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """What is given changes; a new profile needs a `name`. An empty `avatarUrl` removes it."""

    name: str | None = None
    bio: str | None = None
    avatar_url: str | None = None


class ProfileView(msgspec.Struct, rename="camel", kw_only=True):
    id: UUID
    name: str
    bio: str
    avatar_url: str | None
    created_at: datetime
    updated_at: datetime


@dataclass
class ContentUpload:
    """The multipart form of `POST /artists/{id}/content`."""

    type: str
    title: str
    unlockDate: str
    file: UploadFile
    description: str | None = None
    minTierId: str | None = None
    metadata: str | None = None


class ContentPatch(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """What is given changes; `minTierId: null` opens the item to every fan once unlocked."""

    unlock_date: datetime | None = None
    title: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    min_tier_id: str | msgspec.UnsetType | None = msgspec.UNSET


class ContentView(msgspec.Struct, rename="camel", kw_only=True):
    id: UUID
    artist_id: str
    type: str
    title: str
    description: str
    metadata: dict[str, Any]
    unlock_date: datetime
    min_tier_id: str | None
    min_tier_name: str | None
    status: str  # for you: unlocked (you may open it) or locked
    mime: str
    size: int
    download_path: str | None  # while it is unlocked for you
    uploaded_at: datetime
    updated_at: datetime


class ContentPage(msgspec.Struct, rename="camel", kw_only=True):
    items: list[ContentView]
    next_cursor: str | None = None


def profile_view(p: ArtistProfile) -> ProfileView:
    return ProfileView(
        id=p.id,
        name=p.name,
        bio=p.bio,
        avatar_url=p.avatar_url,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def _sees_all(identity: Identity, artist_id: str) -> bool:
    return identity.user_id == artist_id or is_admin(identity)


# One query shape for every read without a cache: the items of the locker with the viewer's
# access (`opens`) and the tier's name and rank; `$1` the viewer, `$2` now, the rest the
# caller's.
_SELECT = access_sql(
    f"SELECT i.*, t.name AS tier_name, t.currency AS tier_currency, "
    f"t.annual_price AS tier_annual_price, {OPENS} AS opens, {VISIBLE} AS visible "
    f"FROM {ITEMS} i LEFT JOIN {TIERS} t ON t.id = i.min_tier_id",
    viewer=1,
    now=2,
)


def _view(item: ItemFacts, opens: bool) -> ContentView:
    return ContentView(
        id=item.id,
        artist_id=item.artist_id,
        type=item.media_type,
        title=item.title,
        description=item.description,
        metadata=item.metadata,
        unlock_date=item.unlock_date,
        min_tier_id=item.min_tier_id,
        min_tier_name=item.tier_name,
        status="unlocked" if opens else "locked",
        mime=item.mime,
        size=item.size,
        download_path=f"/api/v1/content/{item.id}/download" if opens else None,
        uploaded_at=item.uploaded_at,
        updated_at=item.updated_at,
    )


class _Facts(ViewFacts):
    """The view's facts for the locker cache; a locker's only once its artist's profile is
    found (else 404). So a cached locker is one whose artist has a profile, which is never
    deleted: a hit needs no look-up of it."""

    def __init__(self, nft: NftContext) -> None:
        super().__init__(nft.pool)
        self.nft = nft

    async def locker(self, artist_id: str) -> LockerFacts:
        await self.nft.store.call(self.nft.app.profile, UUID(artist_id))
        return await super().locker(artist_id)


async def _item(nft: NftContext, identity: Identity, content_id: UUID) -> tuple[ItemFacts, bool]:
    """The item as the caller may see it, and whether it opens to them; 404 when it is none of
    theirs to see."""
    cache: LockerCache | None = nft.locker_cache
    if cache is not None:
        source = _Facts(nft)
        artist_id = await cache.artist_of(content_id, source)
        if artist_id is None:
            raise ContentNotFound(details={"contentId": str(content_id)})
        sees_all = _sees_all(identity, artist_id)
        locker, fan = await cache.facts(artist_id, None if sees_all else identity.user_id, source)
        item = locker.item(content_id)
        if item is not None:
            if sees_all:
                return item, True
            now = nft.clock()
            if not item.shown(now):
                raise ContentNotFound(details={"contentId": str(content_id)})
            return item, item.opens(fan or FanFacts(), now)
        # Not in the cached locker yet (its invalidation trails the view's commit): the view.
    row = await nft.pool.fetchrow(
        f"{_SELECT} WHERE i.id = $3", identity.user_id, nft.clock(), content_id
    )
    if row is None:
        raise ContentNotFound(details={"contentId": str(content_id)})
    sees_all = _sees_all(identity, row["artist_id"])
    if not (sees_all or row["visible"]):
        raise ContentNotFound(details={"contentId": str(content_id)})
    return ItemFacts.of(row), sees_all or row["opens"]


async def view_page(
    nft: NftContext,
    identity: Identity,
    artist_id: str,
    status: str,
    limit: int,
    cursor: str | None,
) -> ContentPage:
    """The page from the view, the rule in SQL (no cache)."""
    await nft.store.call(nft.app.profile, UUID(artist_id))  # 404 for an unknown artist
    sees_all = _sees_all(identity, artist_id)
    query = PageQuery.parse(limit, cursor, newest_first=True)
    condition, order, args = query.sql("i.uploaded_at", "i.id", 4)
    if sees_all:
        shown = "FALSE" if status == "locked" else "TRUE"
    else:
        opens = access_sql(OPENS, viewer=1, now=2)
        shown = {
            "unlocked": opens,
            "locked": f"({access_sql(VISIBLE, viewer=1, now=2)} AND NOT {opens})",
            "all": access_sql(VISIBLE, viewer=1, now=2),
        }[status]
    rows = await nft.pool.fetch(
        f"{_SELECT} WHERE i.artist_id = $3 AND {shown} AND {condition} {order}",
        identity.user_id,
        nft.clock(),
        artist_id,
        *args,
    )
    page = page_of(rows, query, lambda r: Position(r["uploaded_at"], r["id"]))
    return ContentPage(
        items=[_view(ItemFacts.of(r), sees_all or r["opens"]) for r in page.items],
        next_cursor=page.next_cursor,
    )


async def cached_page(
    nft: NftContext,
    cache: LockerCache,
    identity: Identity,
    artist_id: str,
    status: str,
    limit: int,
    cursor: str | None,
) -> ContentPage:
    """The page from the cached facts: the same rule, filters and keyset paging as the SQL."""
    sees_all = _sees_all(identity, artist_id)
    locker, fan = await cache.facts(artist_id, None if sees_all else identity.user_id, _Facts(nft))
    query = PageQuery.parse(limit, cursor, newest_first=True)
    fan = fan or FanFacts()
    now = nft.clock()
    after = None if query.after is None else (query.after.at, query.after.id)
    chosen: list[tuple[ItemFacts, bool]] = []
    if not (sees_all and status == "locked"):
        for item in locker.items:  # newest first: (uploaded_at, id) descending
            if after is not None and (item.uploaded_at, item.id) >= after:
                continue
            opens = True
            if not sees_all:
                if not item.shown(now):
                    continue
                opens = item.opens(fan, now)
                if status != "all" and opens != (status == "unlocked"):
                    continue
            chosen.append((item, opens))
            if len(chosen) > query.limit:
                break
    page = page_of(chosen, query, lambda c: Position(c[0].uploaded_at, c[0].id))
    return ContentPage(items=[_view(i, o) for i, o in page.items], next_cursor=page.next_cursor)


def _moment(text: str, field: str) -> datetime:
    try:
        return moment(msgspec.convert(text, datetime), field=field)
    except msgspec.ValidationError:
        raise invalid(field, "Expected an RFC 3339 date-time with a timezone") from None


class ArtistsController(Controller):
    path = "/artists"
    tags = ["locker"]
    dependencies = {"nft": Provide(provide_nft)}

    @get("/{artist_id:uuid}", raises=(NotFound,))
    async def profile(
        self, artist_id: FromPath[UUID], nft: NamedDependency[NftContext]
    ) -> ProfileView:
        """An artist's profile: name, bio, avatar."""
        return profile_view(await nft.store.call(nft.app.profile, artist_id))

    @put("/{artist_id:uuid}", raises=(Forbidden,))
    async def save_profile(
        self,
        artist_id: FromPath[UUID],
        data: JSONBody[ProfileRequest],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> ProfileView:
        """Create or edit your artist profile (an artist's own; an admin's for anyone)."""
        if not (is_artist(identity) or is_admin(identity)):
            raise NotYourLocker("Only an artist keeps an artist profile")
        profile = await nft.store.call(
            nft.app.save_profile,
            artist_id,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            name=data.name,
            bio=data.bio,
            avatar_url=data.avatar_url,
            now=nft.clock(),
        )
        return profile_view(profile)

    @post_route(
        "/{artist_id:uuid}/content",
        status_code=201,
        request_max_body_size=CONTENT_BODY_BYTES,
        raises=(NotFound, Forbidden, UnsupportedMediaType, PayloadTooLarge),
    )
    async def upload(
        self,
        artist_id: FromPath[UUID],
        data: Annotated[ContentUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> ContentView:
        """N25: the artist uploads an item: `type` (audio, video or image: the file must be
        it, else 415), `title`, `description`, `unlockDate`, `minTierId`, `metadata`,
        `file` (at most 200 MiB)."""
        app = nft.app
        try:
            # What the locker refuses is refused before anything is stored.
            await nft.store.call(
                app.check_locker_owner,
                artist_id,
                actor_id=identity.user_id,
                actor_is_admin=is_admin(identity),
                min_tier_id=data.minTierId or None,
            )
            if data.type not in MEDIA_TYPES:
                raise invalid("type", "Expected audio, video or image")
            check(ItemTitle, data.title, field="title")
            check(ItemDescription, data.description or "", field="description")
            unlock = _moment(data.unlockDate, "unlockDate")
            metadata = json_object_field(
                data.metadata,
                field="metadata",
                max_bytes=MAX_METADATA_BYTES,
                max_depth=MAX_METADATA_DEPTH,
            )
            stored = await nft.storage.put(
                f"locker/{artist_id}", chunks(data.file), expect=data.type
            )
        finally:
            await data.file.close()
        item = await nft.store.call(
            app.upload_content,
            uuid.uuid4(),
            artist_id=artist_id,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            media_type=data.type,
            title=data.title,
            description=data.description,
            file={
                "key": stored.key,
                "mime": stored.mime,
                "size": stored.size,
                "sha256": stored.sha256,
            },
            unlock_date=unlock,
            min_tier_id=data.minTierId or None,
            metadata=metadata,
            now=nft.clock(),
        )
        return await _fresh_view(nft, identity, item.id)

    @get("/{artist_id:uuid}/content", raises=(NotFound, ValidationFailed))
    async def locker(
        self,
        artist_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
        status: Annotated[
            Literal["unlocked", "locked", "all"],
            QueryParameter(description="unlocked: what you may open; locked: what you may not"),
        ] = "all",
        limit: PageLimit = DEFAULT_LIMIT,
        cursor: PageCursor = None,
    ) -> ContentPage:
        """N26: the artist's items you may see, newest first."""
        if nft.locker_cache is not None:
            return await cached_page(
                nft, nft.locker_cache, identity, str(artist_id), status, limit, cursor
            )
        return await view_page(nft, identity, str(artist_id), status, limit, cursor)


async def _fresh_view(nft: NftContext, identity: Identity, content_id: UUID) -> ContentView:
    """The item just written, from the aggregate (the view may not have caught up yet)."""
    item = await nft.store.call(nft.app.content, content_id)
    tier_name = None
    if item.min_tier_id is not None:
        tier_name = await nft.pool.fetchval(
            f"SELECT name FROM {TIERS} WHERE id = $1", item.min_tier_id
        )
    return ContentView(
        id=item.id,
        artist_id=item.artist_id,
        type=item.media_type,
        title=item.title,
        description=item.description,
        metadata=item.metadata,
        unlock_date=item.unlock_date,
        min_tier_id=item.min_tier_id,
        min_tier_name=tier_name,
        status="unlocked",  # its artist's (or an admin's) view
        mime=item.file["mime"],
        size=item.file["size"],
        download_path=f"/api/v1/content/{item.id}/download",
        uploaded_at=item.uploaded_at,
        updated_at=item.updated_at,
    )


class ContentController(Controller):
    path = "/content"
    tags = ["locker"]
    dependencies = {"nft": Provide(provide_nft)}

    @get("/{content_id:uuid}", raises=(NotFound,))
    async def item(
        self,
        content_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> ContentView:
        """One item, if you may see it (unlocked or locked for you)."""
        return _view(*await _item(nft, identity, content_id))

    @patch("/{content_id:uuid}", raises=(NotFound, Forbidden))
    async def edit(
        self,
        content_id: FromPath[UUID],
        data: JSONBody[ContentPatch],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> ContentView:
        """N27: the artist changes an item's unlock date, tier, title, description or
        metadata."""
        clear_tier = data.min_tier_id is None
        item = await nft.store.call(
            nft.app.edit_content,
            content_id,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            unlock_date=data.unlock_date,
            title=data.title,
            description=data.description,
            metadata=data.metadata,
            min_tier_id=data.min_tier_id if isinstance(data.min_tier_id, str) else None,
            clear_tier=clear_tier,
            now=nft.clock(),
        )
        return await _fresh_view(nft, identity, item.id)

    @get("/{content_id:uuid}/download", raises=(NotFound,))
    async def download(
        self,
        content_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> Stream | Redirect:
        """The item's file, when it is unlocked for you (else 404: a locked item's file is
        never served): a signed URL valid 5 minutes (S3) or the bytes."""
        item, opens = await _item(nft, identity, content_id)
        if not opens:
            raise ContentNotFound(
                "This item is locked for you", details={"contentId": str(content_id)}
            )
        if isinstance(nft.storage, S3Storage):
            url = await nft.storage.presign_download(
                item.file_key, expires_seconds=DOWNLOAD_SECONDS
            )
            return Redirect(url, status_code=307)
        return Stream(nft.storage.open(item.file_key), media_type=item.mime)
