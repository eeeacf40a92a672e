"""Password hashing (argon2), signed access tokens (JWT) and device tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app import clock
from app.config import get_settings

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps timing the same either way.
_DUMMY_HASH = _hasher.hash("loaxa-dummy-password")
ALGORITHM = "HS256"
DEVICE_TOKEN_PREFIX = "dev_"


def use_hasher(hasher: PasswordHasher) -> None:
    """Swap the argon2 parameters (tests use the cheapest profile to stay fast)."""
    global _hasher, _DUMMY_HASH
    _hasher = hasher
    _DUMMY_HASH = hasher.hash("loaxa-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when the password matches; constant work whether or not the user exists."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def password_fingerprint(password_hash: str | None) -> str:
    """A short digest of the stored hash, carried by API tokens and console sessions: a new
    password ends both (the hash itself never leaves the database)."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def create_access_token(
    *, user_id: int, role: str, password_hash: str | None, generation: int = 0
) -> tuple[str, int]:
    """A signed token for the user, and its lifetime in seconds. It names the password it
    was issued under (``password_fingerprint``) and the user's ``auth_generation``, so a
    password reset or disabling the user revokes it for good."""
    settings = get_settings()
    lifetime = timedelta(minutes=settings.access_token_minutes)
    issued = clock.now()
    payload = {
        "sub": str(user_id),
        "role": role,
        "pw": password_fingerprint(password_hash),
        "gen": generation,
        "iat": issued,
        "exp": issued + lifetime,
    }
    token = jwt.encode(payload, settings.signing_key(), algorithm=ALGORITHM)
    return token, int(lifetime.total_seconds())


def decode_access_token(token: str) -> dict[str, Any] | None:
    """The token's claims, or None when it is forged, malformed or expired."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            get_settings().signing_key(),
            algorithms=[ALGORITHM],
            # Expiry is checked below against loaxa's clock, which tests control.
            options={"require": ["sub", "exp"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= clock.now().timestamp():
        return None
    return claims


def new_device_token() -> str:
    """A random device token (shown once; only its hash is stored)."""
    return DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_device_token(token: str) -> str:
    # The token has 256 bits of entropy: a plain SHA-256 suffices and keeps lookups cheap.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
