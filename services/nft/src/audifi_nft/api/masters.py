"""Masters and their IPOs: `POST /masters` (multipart upload), `GET /masters/{masterId}`,
`POST/GET /masters/{masterId}/ipo`, and its shares' minting: `POST /masters/{masterId}/mint`
(re-drive failed mints), `GET /masters/{masterId}/mints`.

An artist (or an admin, for any artist) registers a master with its audio and cover: each
file is streamed from the request's upload into the media storage, which sniffs its content
(415 when the audio is not audio, or the cover not an image) and refuses one past 200 MiB
(413). The route's body limit allows two such files and the form's fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from audifi_kit.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from audifi_kit.fields import check
from audifi_kit.http import Identity
from audifi_kit.media.kinds import MAX_UPLOAD_BYTES
from audifi_kit.media.s3 import PresignedUpload, S3Storage
from audifi_kit.values import user_id
from litestar import Controller, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody

from audifi_nft.api.dependencies import NftContext, is_admin, is_artist, provide_nft
from audifi_nft.api.forms import chunks, json_object_field
from audifi_nft.domain.ipo import Ipo
from audifi_nft.domain.master import MAX_METADATA_BYTES, Master, MediaRef, Title, isrc
from audifi_nft.domain.mint import Mint
from audifi_nft.projections.minting import QUEUE

FORM_FIELDS_BYTES = 1024 * 1024  # title, isrc, metadata (16 KiB), artistId and the framing
MAX_METADATA_DEPTH = 16
MAX_MASTER_BODY_BYTES = 2 * MAX_UPLOAD_BYTES + FORM_FIELDS_BYTES


class NotAnArtist(Forbidden):
    default_message = "Only an artist (or an admin) may register a master"


class NotYourArtist(Forbidden):
    default_message = "Only an admin may register a master for another artist"


@dataclass
class MasterUpload:
    """The multipart form of `POST /masters`."""

    title: str
    isrc: str
    audio: UploadFile
    cover: UploadFile
    metadata: str | None = None  # a JSON object, as text
    artistId: str | None = None  # the form field's name; an admin's choice


class PresignedUploadsUnavailable(Conflict):
    code = "PRESIGNED_UPLOADS_UNAVAILABLE"
    default_message = "This platform keeps media on its own disk: upload to POST /masters"


class UploadRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    kind: Literal["audio", "cover"]


class MasterFromUploads(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    title: str
    isrc: str
    audio_upload: str
    cover_upload: str
    metadata: str | None = None  # a JSON object, as text (as the form's field)
    artist_id: str | None = None


class MediaView(msgspec.Struct, rename="camel", kw_only=True):
    mime: str
    size: int
    sha256: str
    cid: str


class MasterView(msgspec.Struct, rename="camel", kw_only=True):
    id: UUID
    artist_id: str
    title: str
    isrc: str
    chain_id: str  # the MasterShares token id: above 2**53, so decimal text
    ipfs_hash: str  # the audio's CID
    audio: MediaView
    cover: MediaView
    metadata: dict[str, Any]
    registered_at: datetime
    creative_state: str = "open"  # "final" once a V Studio session locked it
    locked_by_session: str | None = None


class IpoTerms(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Typed only as JSON types: the domain checks ranges and formats, naming the field."""

    cap: int
    price_cents: int
    currency: str
    opens_at: datetime
    closes_at: datetime
    per_account_max: int
    royalty_receiver: str
    royalty_bps: int


class IpoView(msgspec.Struct, rename="camel", kw_only=True):
    id: UUID
    master_id: UUID
    status: str
    cap: int
    price_cents: int
    currency: str
    opens_at: datetime
    closes_at: datetime
    per_account_max: int
    royalty_receiver: str
    royalty_bps: int
    allocated: int
    available: int
    closed_reason: str | None = None  # sold_out or ended, once closed


def _media_view(ref: MediaRef) -> MediaView:
    return MediaView(mime=ref.mime, size=ref.size, sha256=ref.sha256, cid=ref.cid)


def master_view(master: Master) -> MasterView:
    audio = master.audio_ref
    return MasterView(
        id=master.id,
        artist_id=master.artist_id,
        title=master.title,
        isrc=master.isrc,
        chain_id=str(master.chain_id),
        ipfs_hash=audio.cid,
        audio=_media_view(audio),
        cover=_media_view(master.cover_ref),
        metadata=master.metadata,
        registered_at=master.created_on,
        creative_state=getattr(master, "creative_state", "open"),
        locked_by_session=getattr(master, "locked_by_session", None),
    )


def ipo_view(ipo: Ipo) -> IpoView:
    return IpoView(
        id=ipo.id,
        master_id=ipo.master_id,
        status=ipo.status,
        cap=ipo.cap,
        price_cents=ipo.price_cents,
        currency=ipo.currency,
        opens_at=ipo.opens_at,
        closes_at=ipo.closes_at,
        per_account_max=ipo.per_account_max,
        royalty_receiver=ipo.royalty_receiver,
        royalty_bps=ipo.royalty_bps,
        allocated=ipo.allocated,
        available=ipo.available,
        closed_reason=ipo.closed_reason,
    )


def _artist_of(identity: Identity, requested: str | None) -> str:
    admin = is_admin(identity)
    if not (admin or is_artist(identity)):
        raise NotAnArtist()
    if requested is None or not requested.strip():
        return identity.user_id
    artist = user_id(requested.strip(), field="artistId")
    if artist != identity.user_id and not admin:
        raise NotYourArtist(details={"artistId": artist})
    return artist


class MastersController(Controller):
    path = "/masters"
    tags = ["masters"]
    dependencies = {"nft": Provide(provide_nft)}

    @post(
        "/",
        status_code=201,
        request_max_body_size=MAX_MASTER_BODY_BYTES,
        raises=(Forbidden, Conflict, UnsupportedMediaType, PayloadTooLarge),
    )
    async def register(
        self,
        data: Annotated[MasterUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> MasterView:
        """A master: `title`, `isrc`, optional `metadata` (a JSON object) and `artistId` (an
        admin's), files `audio` and `cover` (each at most 200 MiB)."""
        try:
            artist = _artist_of(identity, data.artistId)
            metadata = json_object_field(
                data.metadata,
                field="metadata",
                max_bytes=MAX_METADATA_BYTES,
                max_depth=MAX_METADATA_DEPTH,
            )
            # What the domain refuses is refused before anything is stored.
            check(Title, data.title, field="title")
            isrc(data.isrc)
            audio = await nft.storage.put("masters", chunks(data.audio), expect="audio")
            cover = await nft.storage.put("masters", chunks(data.cover), expect="image")
        finally:
            await data.audio.close()
            await data.cover.close()
        master = await nft.store.call(
            nft.app.register_master,
            artist_id=artist,
            registered_by=identity.user_id,
            title=data.title,
            isrc_code=data.isrc,
            audio=audio,
            cover=cover,
            metadata=metadata,
        )
        return master_view(master)

    @post("/uploads", status_code=201, raises=(Forbidden, Conflict))
    async def presign(
        self,
        data: JSONBody[UploadRequest],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> PresignedUpload:
        """A pre-signed upload straight to the media store (S3-compatible stores only: 409
        PRESIGNED_UPLOADS_UNAVAILABLE otherwise): POST the file as a form with `fields` to
        `url` within 15 minutes, then name its `uploadKey` in `POST /masters/from-uploads`.
        The store bounds its size (200 MiB); its kind is sniffed when it is adopted."""
        _artist_of(identity, None)
        if not isinstance(nft.storage, S3Storage):
            raise PresignedUploadsUnavailable()
        expect = {"audio": "audio", "cover": "image"}[data.kind]
        form = await nft.storage.presign_upload("masters", expect=expect)
        await nft.store.call(
            nft.app.issue_upload,
            upload_key=form.upload_key,
            owner_id=identity.user_id,
            expect=expect,
            expires_at=form.expires_at,
        )
        return form

    @post(
        "/from-uploads",
        status_code=201,
        raises=(Forbidden, Conflict, NotFound, UnsupportedMediaType, PayloadTooLarge),
    )
    async def register_from_uploads(
        self,
        data: JSONBody[MasterFromUploads],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> MasterView:
        """A master whose audio and cover were uploaded with `POST /masters/uploads` (by the
        caller): each adopted under the same rules as a direct upload (415, 413), then the
        master registered as `POST /masters` does."""
        artist = _artist_of(identity, data.artist_id)
        metadata = json_object_field(
            data.metadata,
            field="metadata",
            max_bytes=MAX_METADATA_BYTES,
            max_depth=MAX_METADATA_DEPTH,
        )
        check(Title, data.title, field="title")
        isrc(data.isrc)
        if not isinstance(nft.storage, S3Storage):
            raise PresignedUploadsUnavailable()
        uploads = ((data.audio_upload, "audio"), (data.cover_upload, "image"))
        staged = [  # both the caller's, unused, before either is adopted
            await nft.store.call(
                nft.app.staged_upload, key, owner_id=identity.user_id, expect=expect
            )
            for key, expect in uploads
        ]
        refs = [await nft.storage.adopt("masters", key, expect=expect) for key, expect in uploads]
        master = await nft.store.call(
            nft.app.register_master,
            artist_id=artist,
            registered_by=identity.user_id,
            title=data.title,
            isrc_code=data.isrc,
            audio=refs[0],
            cover=refs[1],
            metadata=metadata,
            adopted=tuple(staged),
        )
        return master_view(master)

    @get("/{master_id:uuid}", raises=(NotFound,))
    async def master(
        self, master_id: FromPath[UUID], nft: NamedDependency[NftContext]
    ) -> MasterView:
        """The master as registered."""
        return master_view(await nft.store.call(nft.app.master, master_id))

    @post("/{master_id:uuid}/ipo", status_code=201, raises=(NotFound, Forbidden, Conflict))
    async def configure_ipo(
        self,
        master_id: FromPath[UUID],
        data: JSONBody[IpoTerms],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> IpoView:
        """The master's one IPO, by its artist (or an admin); opened at once when `opensAt`
        is not in the future."""
        ipo = await nft.store.call(
            nft.app.configure_ipo,
            master_id=master_id,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            cap=data.cap,
            price_cents=data.price_cents,
            currency=data.currency,
            opens_at=data.opens_at,
            closes_at=data.closes_at,
            per_account_max=data.per_account_max,
            royalty_receiver=data.royalty_receiver,
            royalty_bps=data.royalty_bps,
            now=datetime.now(UTC),
        )
        if ipo.opens_at <= datetime.now(UTC):  # opened on chain, then recorded open
            ipo = await nft.ipos.launch(ipo.id)
        return ipo_view(ipo)

    @get("/{master_id:uuid}/ipo", raises=(NotFound,))
    async def ipo(self, master_id: FromPath[UUID], nft: NamedDependency[NftContext]) -> IpoView:
        """The master's IPO."""
        return ipo_view(await nft.store.call(nft.app.ipo_of_master, master_id))

    @post("/{master_id:uuid}/mint", status_code=202, raises=(NotFound, Forbidden))
    async def mint(
        self,
        master_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> MintsView:
        """Minting re-driven (the seed's "Trigger minting"), by the master's artist or an
        admin: every paid allocation whose on-chain mint failed is tried again. Answers each
        allocation not minted yet, failed ones now `requested` (follow them at
        `GET /masters/{id}/mints`). Idempotent: nothing failed, nothing changes."""
        mints = await nft.store.call(
            nft.app.redrive_mints,
            master_id,
            by=identity.user_id,
            by_admin=is_admin(identity),
            now=datetime.now(UTC),
        )
        nft.wake_minter()
        return MintsView(items=[_mint_line(m) for m in mints])

    @get("/{master_id:uuid}/mints", raises=(NotFound, Forbidden))
    async def mints(
        self,
        master_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> MintsView:
        """Every paid allocation of the master's IPO and its mint: allocated, requested,
        signed, minted or failed (with the chain's BLOCKCHAIN_ERROR), oldest first. For the
        master's artist and admins."""
        await nft.store.call(
            nft.app.check_master_operator,
            master_id,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
        )
        rows = await nft.pool.fetch(
            f"SELECT * FROM {QUEUE} WHERE master_id = $1 AND reservation_id NOT LIKE "
            "'withdrawal:%' ORDER BY allocated_at, reservation_id",
            master_id,
        )
        return MintsView(items=[_queue_line(r) for r in rows])


class MintLine(msgspec.Struct, rename="camel", kw_only=True):
    reservation_id: str
    account_id: str
    quantity: int
    status: str
    to: str | None = None
    custody: bool | None = None
    tx_hash: str | None = None
    attempts: int = 0
    error: dict[str, Any] | None = None


class MintsView(msgspec.Struct, rename="camel", kw_only=True):
    items: list[MintLine]


def _mint_line(m: Mint) -> MintLine:
    return MintLine(
        reservation_id=m.reservation_id,
        account_id=m.account_id,
        quantity=m.quantity,
        status=m.status,
        to=m.to,
        custody=m.custody,
        tx_hash=m.tx_hash,
        attempts=m.attempt,
        error=m.error,
    )


def _queue_line(row: Any) -> MintLine:
    error = row["error"]
    return MintLine(
        reservation_id=row["reservation_id"],
        account_id=row["account_id"],
        quantity=row["quantity"],
        status=row["status"],
        to=row["to_address"],
        custody=row["custody"],
        tx_hash=row["tx_hash"],
        attempts=row["attempts"],
        error=None if error is None else msgspec.json.decode(error),
    )
