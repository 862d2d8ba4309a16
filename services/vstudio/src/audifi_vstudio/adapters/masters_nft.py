"""The `Masters` port over nft's HTTP API: whose a master is, and who holds its shares.

vstudio asks nft, with the caller's own access token (the master's artist or an admin, who
may read every holder), at the two moments it needs to: a session created (the master exists
and is the caller's, or the caller is an admin) and a `shares` decision opened (the holders'
snapshot, `GET /masters/{id}/shares/by-account`: each account's wallets and custody part
together). nft is reached at `settings.service_url("nft")` (AUDIFI_NFT_URL distributed)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
from audifi_kit.errors import DomainError, NotFound, Unavailable

from audifi_vstudio.studio import MasterFacts


class MasterNotFound(NotFound):
    code = "MASTER_NOT_FOUND"
    default_message = "Master not found"


class NftMasters:
    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def _get(self, path: str, token: str) -> Any:
        try:
            answer = await self.client.get(path, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise Unavailable(
                "The nft service could not be reached", details={"service": "nft"}
            ) from exc
        if answer.status_code == 404:
            raise MasterNotFound()
        if answer.status_code >= 500:
            raise Unavailable(
                "The nft service failed", details={"service": "nft", "status": answer.status_code}
            )
        if answer.status_code >= 400:  # its own refusal (403...), passed on as it said it
            error = answer.json().get("error", {})
            raise DomainError(
                error.get("message", "nft refused"),
                details=error.get("details") or {},
                code=error.get("code", "UPSTREAM_REFUSED"),
                status_code=answer.status_code,
            )
        return answer.json()

    async def master(self, master_id: UUID, token: str) -> MasterFacts:
        body = await self._get(f"/masters/{master_id}", token)
        return MasterFacts(master_id=master_id, artist_id=body["artistId"], title=body["title"])

    async def holders(self, master_id: UUID, token: str) -> dict[str, int]:
        body = await self._get(f"/masters/{master_id}/shares/by-account", token)
        return {line["accountId"]: int(line["amount"]) for line in body["items"]}

    async def close(self) -> None:
        await self.client.aclose()
