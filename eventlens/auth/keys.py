"""Project tokens (public, for SDKs) and personal API keys (secret, stored only as a hash)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "phc_"  # same shape as PostHog's project tokens, so SDK docs read naturally
API_KEY_PREFIX = "phx_"


def new_project_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(24)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    """SHA-256 hex digest. Keys are 256-bit random, so an unsalted fast hash is sufficient
    (no dictionary to attack) and lets us look a key up by its hash."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def api_key_matches(api_key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(api_key), key_hash)
