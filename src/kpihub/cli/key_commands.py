"""Token signing keys: list, rotate, retire."""

from __future__ import annotations

from typing import Annotated

import typer

from kpihub import admin
from kpihub.cli._run import JsonOpt, emit_json, out, table, when, with_storage
from kpihub.domain import SigningKey

keys_app = typer.Typer(help="Token signing keys (Ed25519), shared by every node on the store.")


def _public(key: SigningKey) -> dict[str, object]:
    """What may be shown of a key: never the private half."""
    return {
        "kid": key.kid,
        "created_at": key.created_at,
        "retired_at": key.retired_at,
        "public_jwk": key.public_jwk,
    }


@keys_app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """List signing keys; the newest active key signs, every active key verifies."""
    keys = with_storage(lambda s, _: s.signing_keys())
    if as_json:
        emit_json([_public(k) for k in keys])
        return
    active = [k for k in keys if k.retired_at is None]
    signing = max(active, key=lambda k: (k.created_at, k.kid)).kid if active else None
    table(
        "Signing keys",
        ["kid", "created", "state"],
        [
            (
                k.kid,
                when(k.created_at),
                "signing" if k.kid == signing else "retired" if k.retired_at else "verifying",
            )
            for k in keys
        ],
    )


@keys_app.command("rotate")
def keys_rotate(as_json: JsonOpt = False) -> None:
    """Add a new signing key. Retire the old one after the longest token lifetime."""
    key = with_storage(lambda s, _: admin.rotate_signing_key(s))
    if as_json:
        emit_json(_public(key))
    else:
        out.print(
            f"New signing key {key.kid}. Nodes sign with it after their next key reload or "
            "restart; retire the old key once tokens signed with it have expired."
        )


@keys_app.command("retire")
def keys_retire(
    kid: Annotated[str, typer.Argument(metavar="KID", help="The key id")],
    as_json: JsonOpt = False,
) -> None:
    """Stop accepting tokens signed with a key (restart nodes to stop them using it)."""
    key = with_storage(lambda s, _: admin.retire_signing_key(s, kid))
    if as_json:
        emit_json(_public(key))
    else:
        out.print(f"Retired signing key {key.kid}.")
