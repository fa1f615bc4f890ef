"""Signing keys as a JWK set: private keys for whoever mints, public keys for verifiers.

Every key carries a ``kid``; tokens name the key that signed them, so a new
key can be added, start signing, and the old one be retired once its tokens
have expired, without any downtime. Ed25519 because verification needs only
the public half: a service that verifies tokens cannot mint them.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

PUBLIC_MEMBERS = ("kty", "crv", "x", "kid", "alg", "use")


def generate_key(kid: str | None = None) -> dict[str, Any]:
    """A new Ed25519 private JWK."""
    key = Ed25519PrivateKey.generate()
    jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(key))
    jwk.update(
        kid=kid or f"k-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}", alg="EdDSA", use="sig"
    )
    return jwk


def public_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """The verification half of a key set, safe to hand to services."""
    return {"keys": [{k: v for k, v in key.items() if k in PUBLIC_MEMBERS} for key in jwks["keys"]]}


def write_jwks(path: Path, jwks: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(jwks, handle, indent=2)
    tmp.replace(path)


def load_jwks(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    if not isinstance(data.get("keys"), list) or not data["keys"]:
        raise ValueError(f"{path} holds no keys")
    return data


def load_or_create_jwks(path: Path) -> dict[str, Any]:
    """The local development key set, created on first use (never used in production)."""
    if path.exists():
        return load_jwks(path)
    jwks = {"keys": [generate_key()]}
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then linked into place: a service starting at the same
    # moment (``make run`` starts three) never reads a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(jwks, handle, indent=2)
        os.link(tmp, path)
    except FileExistsError:  # another process created it first
        return load_jwks(path)
    finally:
        tmp.unlink(missing_ok=True)
    return jwks
