"""Signing keys: generated on first start, stored, shared by every node using the store."""

from __future__ import annotations

import time

from kpihub.oauth.jwt import TokenSigner, generate_signing_key
from kpihub.storage import Storage


async def load_signer(storage: Storage) -> TokenSigner:
    """A signer with the newest active key; every unretired key stays verifiable."""
    keys = await storage.signing_keys()
    if not any(k.retired_at is None for k in keys):
        key = generate_signing_key(int(time.time()))
        # Two nodes starting at once may both add one: both stay verifiable, the newer signs.
        await storage.add_signing_key(key)
        keys = await storage.signing_keys()
    active = [k for k in keys if k.retired_at is None]
    current = max(active, key=lambda k: (k.created_at, k.kid))
    return TokenSigner(current, active)
