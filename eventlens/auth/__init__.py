"""Project tokens and personal API keys: generation and hashing (keys are stored only as
SHA-256 hashes). The HTTP dependency that authenticates a request is web code
(eventlens/web/auth.py)."""

# The public surface: the modules other components may import.
__all__ = ["keys"]
