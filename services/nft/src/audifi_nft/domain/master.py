"""A master: a recording an artist registers to sell shares of (AudiFi's NFT/IPO service).

The artist (or an admin for them) registers the title, the ISRC, the audio and the cover (as
stored by the media storage: content-addressed, with SHA-256 and IPFS CID) and free-form
metadata. An ISRC names one recording: it belongs to one master on the platform (an
`IsrcClaim` aggregate, created in the same save, makes a second registration conflict).

On chain, the master's MasterShares id is its UUID read as an integer (`chain_id`): unique,
below 2**128, and derivable by any reader without a lookup.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from audifi_kit.errors import Conflict, NotFound
from audifi_kit.fields import SingleLineText, check
from audifi_kit.media.kinds import StoredObject
from audifi_kit.values import invalid
from eventsourcing.domain import Aggregate, event

Title = SingleLineText(200, min_length=1, description="The recording's title")
MAX_METADATA_BYTES = 16 * 1024

# ISO 3901: country (2 letters), registrant (3 alphanumerics), year (2 digits), designation
# (5 digits); written with or without hyphens, either case.
_ISRC = re.compile(r"([A-Z]{2})-?([A-Z0-9]{3})-?([0-9]{2})-?([0-9]{5})")
ISRC_NAMESPACE = uuid.UUID("6f0d3b4e-8c1a-4e55-9a8e-2f1b7c9d0e21")


class MasterNotFound(NotFound):
    code = "MASTER_NOT_FOUND"
    default_message = "Master not found"


class IsrcTaken(Conflict):
    code = "ISRC_TAKEN"
    default_message = "Another master has this ISRC"


MediaRef = StoredObject  # a master's audio or cover, as the media storage kept it


def isrc(value: Any) -> str:
    """An ISRC in its canonical form: 12 characters, upper case, no hyphens."""
    text = value.strip().upper() if isinstance(value, str) else ""
    found = _ISRC.fullmatch(text)
    if found is None:
        raise invalid(
            "isrc", "Expected an ISRC: CC-XXX-YY-NNNNN (country, registrant, year, designation)"
        )
    return "".join(found.groups())


def isrc_claim_id(code: str) -> UUID:
    return uuid.uuid5(ISRC_NAMESPACE, code)


def metadata_of(value: Any) -> dict[str, Any]:
    """Free-form JSON metadata (genre, credits, ...): an object of at most 16 KiB."""
    if not isinstance(value, dict):
        raise invalid("metadata", "Expected a JSON object")
    if len(msgspec.json.encode(value)) > MAX_METADATA_BYTES:
        raise invalid("metadata", f"Expected at most {MAX_METADATA_BYTES} bytes of JSON")
    return value


def chain_id(master_id: UUID) -> int:
    """The master's id on MasterShares (an ERC-1155 token id)."""
    return master_id.int


class Master(Aggregate):
    @event("Registered")
    def __init__(
        self,
        *,
        artist_id: str,
        registered_by: str,
        title: str,
        isrc: str,
        audio: dict[str, Any],
        cover: dict[str, Any],
        metadata: dict[str, Any],
    ) -> None:
        self.artist_id = artist_id
        self.registered_by = registered_by
        self.title = title
        self.isrc = isrc
        self.audio = audio
        self.cover = cover
        self.metadata = metadata
        self.creative_state = "open"  # "final" once a V Studio session locked it
        self.locked_by_session: str | None = None
        self.creative_locked_at: datetime | None = None

    @classmethod
    def register(
        cls,
        *,
        artist_id: str,
        registered_by: str,
        title: Any,
        isrc_code: Any,
        audio: MediaRef,
        cover: MediaRef,
        metadata: Any = None,
    ) -> Master:
        if not audio.mime.startswith("audio/"):
            raise invalid("audio", "Expected an audio file")
        if not cover.mime.startswith("image/"):
            raise invalid("cover", "Expected an image")
        return cls(
            artist_id=artist_id,
            registered_by=registered_by,
            title=check(Title, title, field="title"),
            isrc=isrc(isrc_code),
            audio=msgspec.to_builtins(audio),
            cover=msgspec.to_builtins(cover),
            metadata=metadata_of({} if metadata is None else metadata),
        )

    @property
    def chain_id(self) -> int:
        return chain_id(self.id)

    def lock_creative_state(self, *, session_id: str, at: datetime) -> bool:
        """A V Studio session locked the master: its creative state is final (the first
        lock is the one kept); False when it was final already."""
        if self.creative_state == "final":
            return False
        self._creative_state_locked(session_id=session_id, at=at)
        return True

    @event("CreativeStateLocked")
    def _creative_state_locked(self, session_id: str, at: datetime) -> None:
        self.creative_state = "final"
        self.locked_by_session = session_id
        self.creative_locked_at = at

    @property
    def audio_ref(self) -> MediaRef:
        return msgspec.convert(self.audio, MediaRef)

    @property
    def cover_ref(self) -> MediaRef:
        return msgspec.convert(self.cover, MediaRef)


class IsrcClaim(Aggregate):
    """An ISRC's one master: created with it, so a second master of the same ISRC conflicts."""

    @event("Claimed")
    def __init__(self, *, code: str, master_id: UUID) -> None:
        self.code = code
        self.master_id = master_id

    @classmethod
    def create_id(cls, *, code: str, master_id: UUID) -> UUID:
        return isrc_claim_id(code)
