"""API keys of Open311 clients: made at random, shown once, kept only as salted scrypt hashes.

A key reads `<key_id>.<secret>`. The key id is stored as it is, to find the client's row; the
secret is stored as scrypt(secret, per-key salt), and checked in constant time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Open311Client

# scrypt's cost: 16 MiB and a few tens of milliseconds per check, off the event loop.
_N, _R, _P, _LENGTH = 2**14, 8, 1, 32
MAX_NAME = 100


def _hash(secret: str, salt: bytes, n: int = _N, r: int = _R, p: int = _P) -> str:
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, dklen=_LENGTH, maxmem=256 * n * r
    )
    return f"scrypt${n}${r}${p}${digest.hex()}"


def _matches(secret: str, salt_hex: str, stored: str) -> bool:
    scheme, n, r, p, _digest = stored.split("$")
    if scheme != "scrypt":
        return False
    again = _hash(secret, bytes.fromhex(salt_hex), int(n), int(r), int(p))
    return hmac.compare_digest(again.encode(), stored.encode())


async def add_client(
    session: AsyncSession,
    name: str,
    *,
    can_write: bool,
    now: datetime,
    exact_location: bool = False,
) -> tuple[Open311Client, str]:
    """A new client and its key; the key is returned this once and never again."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"the name must be 1-{MAX_NAME} characters")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    salt = secrets.token_bytes(16)
    client = Open311Client(
        name=name,
        key_id=key_id,
        key_salt=salt.hex(),
        key_hash=await asyncio.to_thread(_hash, secret, salt),
        can_write=can_write,
        exact_location=exact_location,
        created_at=now,
    )
    session.add(client)
    await session.flush()
    return client, f"{key_id}.{secret}"


async def clients(session: AsyncSession) -> Sequence[Open311Client]:
    return (await session.scalars(select(Open311Client).order_by(Open311Client.id))).all()


async def revoke(session: AsyncSession, key_id: str, now: datetime) -> Open311Client | None:
    """Revoke a key by its id (the part before the dot); None if there is no such key."""
    client = await session.scalar(select(Open311Client).where(Open311Client.key_id == key_id))
    if client is not None and client.revoked_at is None:
        client.revoked_at = now
    return client


async def allow_exact_location(
    session: AsyncSession, key_id: str, allowed: bool
) -> Open311Client | None:
    """Let a client read cases' points as stored (or no longer); None if there is no such key.

    Meant for the district's own systems (the 12345 work-order system, its GIS): a point is
    often a resident's doorstep, and everyone else reads it on the district's grid.
    """
    client = await session.scalar(select(Open311Client).where(Open311Client.key_id == key_id))
    if client is not None:
        client.exact_location = allowed
    return client


async def authenticate(session: AsyncSession, api_key: str) -> Open311Client | None:
    """The client a key belongs to, if the key is right and not revoked."""
    key_id, dot, secret = api_key.strip().partition(".")
    if not dot or not key_id or not secret or len(api_key) > 200:
        return None
    client = await session.scalar(
        select(Open311Client).where(
            Open311Client.key_id == key_id, Open311Client.revoked_at.is_(None)
        )
    )
    if client is None:
        return None
    ok = await asyncio.to_thread(_matches, secret, client.key_salt, client.key_hash)
    return client if ok else None
