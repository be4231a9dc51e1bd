"""Changes to a client that both backends make with the same SQL, written once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from kpihub.domain import Client


class ClientUpdates(ABC):
    """Secret rotation, revocation and limits as ``UPDATE clients SET ...`` assignments.

    Assignments use ``?`` placeholders; a backend's ``_update_client`` renders them in
    its own style, runs the update for ``client_id`` and returns the updated client
    (``NotFound`` when there is none).
    """

    @abstractmethod
    async def _update_client(self, client_id: str, assignments: str, *params: Any) -> Client:
        """Run ``UPDATE clients SET <assignments> WHERE client_id = <client_id>``."""

    async def rotate_secret(self, client_id: str, new_hash: bytes) -> Client:
        return await self._update_client(
            client_id, "old_secret_hash = secret_hash, secret_hash = ?", new_hash
        )

    async def retire_old_secret(self, client_id: str) -> Client:
        return await self._update_client(client_id, "old_secret_hash = NULL")

    async def revoke_client(self, client_id: str, now: int) -> Client:
        # Tokens issued up to this second are void; the first revocation time is kept.
        return await self._update_client(
            client_id,
            "revoked_at = COALESCE(revoked_at, ?), tokens_valid_after = ?",
            now,
            now + 1,
        )

    async def set_rate_limit(self, client_id: str, rate_limit: int | None) -> Client:
        return await self._update_client(client_id, "rate_limit = ?", rate_limit)
