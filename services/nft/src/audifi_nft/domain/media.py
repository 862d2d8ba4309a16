"""nft's own part of its media: who may use a file uploaded straight to the store.

`StagedUpload` records a pre-signed upload (`S3Storage.presign_upload`) as handed to one user:
only they may register a master with it, once (`adopt`). Its id is derived from the upload's
key (`staged_upload_id`).

What media is (kinds sniffed from their first bytes, the size limit, the refusals, the
content-addressed `StoredObject` and its CID) lives in the kit, `audifi_kit.media.kinds`; the
names below are re-exported for nft's tests and benches, and nft's modules import the kit.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from audifi_kit.media.kinds import PNG as PNG
from audifi_kit.media.kinds import WAV as WAV
from audifi_kit.media.kinds import MediaKind as MediaKind
from audifi_kit.media.kinds import StoredObject as StoredObject
from audifi_kit.media.kinds import cid_v1_raw as cid_v1_raw
from eventsourcing.domain import Aggregate, event

STAGED_NAMESPACE = uuid.UUID("e4a7c2b9-1d3f-4c8e-9a6b-5f0d2e7c1b38")


def staged_upload_id(upload_key: str) -> uuid.UUID:
    return uuid.uuid5(STAGED_NAMESPACE, upload_key)


class StagedUpload(Aggregate):
    """A pre-signed upload handed to one user: only they may register a master with it."""

    @event("Issued")
    def __init__(self, *, upload_key: str, owner_id: str, expect: str, expires_at: datetime):
        self.upload_key = upload_key
        self.owner_id = owner_id
        self.expect = expect
        self.expires_at = expires_at
        self.adopted = False

    @classmethod
    def issue(
        cls, *, upload_key: str, owner_id: str, expect: str, expires_at: datetime
    ) -> StagedUpload:
        return cls._create(
            cls.Issued,
            id=staged_upload_id(upload_key),
            upload_key=upload_key,
            owner_id=owner_id,
            expect=expect,
            expires_at=expires_at,
        )

    @event("Adopted")
    def adopt(self, master_id: str) -> None:
        self.adopted = True
