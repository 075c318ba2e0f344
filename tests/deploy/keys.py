"""What a committed secret looks like, for the deploy tests that check none is written."""

from __future__ import annotations

import re


def looks_like_a_key(token: str) -> bool:
    """A long token of base64 or hex characters mixing cases and digits: a secret."""
    return (
        len(token) >= 32
        and re.fullmatch(r"[A-Za-z0-9+/=_-]+", token) is not None
        and any(c.isdigit() for c in token)
        and any(c.isupper() for c in token)
        and any(c.islower() for c in token)
    ) or re.fullmatch(r"[0-9a-fA-F]{32,}", token) is not None


def keys_in(text: str) -> list[str]:
    """The tokens of a YAML (or similar) text that look like keys."""
    return [t for t in re.split(r"[\s\"',:\[\]{}()]+", text) if looks_like_a_key(t)]
