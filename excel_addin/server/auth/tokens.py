"""Class codes: the personal token each enrolled person types into the task pane once.

A code is 16 characters of Crockford's base 32 (digits and capitals without I, L, O, U, so nothing is
misread off a printed slip) in 4 groups of 4: 16 x 5 = 80 random bits from ``secrets``. What is typed is
read leniently (any case, spaces or dashes anywhere, O for 0, I or L for 1). Only the SHA-256 of a code
is stored. A plain, fast hash is enough here, unlike for passwords: slow hashes (bcrypt, Argon2) exist to
make guessing a *human-chosen* password from its hash costly, but a code has 80 bits from a CSPRNG, so
even an attacker holding the class list could not find a code from its hash by trying (2^80 SHA-256s).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32
GROUPS, GROUP_LENGTH = 4, 4
CODE_LENGTH = GROUPS * GROUP_LENGTH
RANDOM_BITS = CODE_LENGTH * 5  # 32 symbols: 5 bits each
PLACEHOLDER = "-".join(["XXXX"] * GROUPS)  # the pane's hint of what a code looks like
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None, "\t": None})


def new_code() -> str:
    """A fresh class code, e.g. ``K7QM-3XWD-9TBA-HR2N``."""
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(symbols[i : i + GROUP_LENGTH] for i in range(0, CODE_LENGTH, GROUP_LENGTH))


def canonical(typed: str) -> str | None:
    """The code someone typed, as its 16 symbols; None when it cannot be a code."""
    symbols = typed.strip().upper().translate(_READ_AS)
    if len(symbols) != CODE_LENGTH or any(ch not in ALPHABET for ch in symbols):
        return None
    return symbols


def digest(code: str) -> str:
    """The hex SHA-256 stored for a code (of its canonical form, so any spelling of it matches)."""
    symbols = canonical(code)
    if symbols is None:
        raise ValueError("not a class code")
    return hashlib.sha256(symbols.encode("ascii")).hexdigest()


def matches(typed_digest: str, stored_digest: str | None) -> bool:
    """Whether two digests are equal, in time that does not depend on where they differ."""
    return stored_digest is not None and hmac.compare_digest(typed_digest, stored_digest)
