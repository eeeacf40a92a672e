"""Sign-in throttling, one for every way in (the API's token endpoint and the console's
sign-in count in the same counters): how often one address may try, and how often one
username may fail from one address.

Every attempt counts against the client's address (LOAXA_TOKEN_RATE_PER_ADDRESS, e.g.
"30/minute"): each costs an argon2 verification, so the address limit also keeps a flood
of attempts from eating the CPU. Failed attempts count against the pair (username,
address) (LOAXA_TOKEN_RATE_PER_USERNAME): a stranger guessing at an account slows only
their own guessing, and never locks its owner out, who signs in from another address as
usual (counting failures per username alone let anyone deny a user the API). Windows are
moving windows: nothing is ever locked for good, and a refusal says when to come back (429
with Retry-After).

The counters live in LOAXA_RATE_LIMIT_STORAGE: "memory://" keeps them in each process (each
uvicorn worker counts alone), "redis://host:port" shares them between every worker and
replica. Should that storage fail, sign-in goes on unthrottled and the failure is logged:
the limit slows attackers down, it is not what keeps them out.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.config import get_settings
from app.errors import TooManyRequests

log = logging.getLogger("loaxa.accounts")


@lru_cache(maxsize=4)
def _limiter(storage_uri: str) -> tuple[Storage, MovingWindowRateLimiter]:
    options: dict[str, float | str | bool] = {"wrap_exceptions": True}
    if storage_uri.startswith(("redis", "rediss")):
        # A Redis that does not answer must not hold a sign-in for long.
        options.update(key_prefix="loaxa", socket_connect_timeout=2.0, socket_timeout=2.0)
    storage = storage_from_string(storage_uri, **options)
    assert isinstance(storage, Storage)  # the sync storages (not limits.aio)
    return storage, MovingWindowRateLimiter(storage)


@lru_cache(maxsize=16)
def _item(spec: str) -> RateLimitItem:
    return parse(spec)


def _user_key(username: str, address: str) -> tuple[str, str, str]:
    # The username hashed: an attacker's arbitrary strings are not stored as keys in Redis.
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return ("sign-in-user", digest, address)


def _retry_after(limiter: MovingWindowRateLimiter, item: RateLimitItem, *key: str) -> int:
    reset = limiter.get_window_stats(item, *key).reset_time
    return max(1, math.ceil(reset - time.time()))


def check_sign_in(*, address: str, username: str) -> None:
    """Count this attempt against the address; 429 when the address, or this username's
    failures from this address, are spent."""
    settings = get_settings()
    per_address = _item(settings.token_rate_per_address)
    per_user = _item(settings.token_rate_per_username)
    user_key = _user_key(username, address)
    try:
        _, limiter = _limiter(settings.rate_limit_storage)
        if not limiter.test(per_user, *user_key):
            raise TooManyRequests(
                "too many failed sign-ins for this username; try again later",
                retry_after=_retry_after(limiter, per_user, *user_key),
            )
        if not limiter.hit(per_address, "sign-in-address", address):
            raise TooManyRequests(
                "too many sign-in attempts from this address; try again later",
                retry_after=_retry_after(limiter, per_address, "sign-in-address", address),
            )
    except StorageError as exc:
        log.error("sign-in throttling is off: the rate-limit storage failed (%s)", exc)


def record_failure(*, address: str, username: str) -> None:
    """A failed attempt counts against the pair (username, address)."""
    settings = get_settings()
    try:
        _, limiter = _limiter(settings.rate_limit_storage)
        limiter.hit(_item(settings.token_rate_per_username), *_user_key(username, address))
    except StorageError as exc:
        log.error("sign-in throttling is off: the rate-limit storage failed (%s)", exc)


def reset() -> None:
    """Forget every count (tests; an operator lifting a limit by restarting does the same)."""
    for storage, _ in [_limiter(get_settings().rate_limit_storage)]:
        storage.reset()
