"""Credentials with real Ed25519 keys: every way a token can be wrong, rotation, the CLI."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from typer.testing import CliRunner

from services.cli.main import app as cli
from shared.auth import tokens
from shared.auth.keys import generate_key, load_jwks, public_jwks, write_jwks
from shared.auth.setup import build_issuer, build_verifier
from shared.auth.tokens import AuthError, TokenIssuer, TokenVerifier
from shared.settings import ServiceSettings

ISS, AUD = "followthrough", "followthrough-api"


@pytest.fixture(scope="module")
def key_one() -> dict[str, Any]:
    return generate_key("k1")


@pytest.fixture(scope="module")
def key_two() -> dict[str, Any]:
    return generate_key("k2")


def _verifier(*keys: dict[str, Any], **options: Any) -> TokenVerifier:
    return TokenVerifier(public_jwks({"keys": list(keys)}), issuer=ISS, audience=AUD, **options)


def _issuer(key: dict[str, Any], issuer: str = ISS, audience: str = AUD) -> TokenIssuer:
    return TokenIssuer(key, issuer=issuer, audience=audience)


def _refused(verifier: TokenVerifier, token: str, status: int = 401) -> str:
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    assert caught.value.status == status
    return caught.value.detail


def test_a_minted_token_names_tenant_and_scopes(key_one: dict[str, Any]) -> None:
    token = _issuer(key_one).mint("acme", scopes=["goals:read", "goals:write"])
    principal = _verifier(key_one).verify(token)
    assert principal.tenant_id == "acme"
    assert principal.scopes == {"goals:read", "goals:write"}
    assert jwt.get_unverified_header(token)["kid"] == "k1"
    principal.require(["goals:read"])
    with pytest.raises(AuthError) as caught:
        principal.require(["goals:read", "sessions:write"])
    assert caught.value.status == 403
    assert "sessions:write" in caught.value.detail


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "Bearer x.y.z", "e30.e30."])
def test_malformed_tokens_are_refused(key_one: dict[str, Any], token: str) -> None:
    detail = _refused(_verifier(key_one), token)
    assert "well-formed" in detail or token == "e30.e30."  # {} header: names no key


def test_expired_tokens_are_refused_beyond_the_leeway(key_one: dict[str, Any]) -> None:
    issuer = _issuer(key_one)
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = issuer.mint("acme", ttl=timedelta(hours=1), now=past)
    assert "expired" in _refused(_verifier(key_one), expired)
    just = issuer.mint(
        "acme", ttl=timedelta(seconds=3590), now=datetime.now(UTC) - timedelta(hours=1)
    )
    assert _verifier(key_one, leeway_seconds=30).verify(just).tenant_id == "acme"
    assert "expired" in _refused(_verifier(key_one, leeway_seconds=0), just)


def test_a_wrong_signature_is_refused(key_one: dict[str, Any]) -> None:
    impostor = generate_key("k1")  # same kid, another key
    forged = _issuer(impostor).mint("acme")
    assert "Signature" in _refused(_verifier(key_one), forged)


def test_unknown_or_odd_kids_are_refused(key_one: dict[str, Any], key_two: dict[str, Any]) -> None:
    assert "unknown key" in _refused(_verifier(key_one), _issuer(key_two).mint("acme"))
    for kid in (["k1"], 7, None, {"k": 1}):
        header = {"alg": "EdDSA", "typ": "JWT", **({"kid": kid} if kid is not None else {})}
        _refused(_verifier(key_one), _raw_token(header, _claims(), key_one))


def _raw_token(header: dict[str, Any], claims: dict[str, Any], jwk: dict[str, Any]) -> str:
    """A token signed by hand, for headers PyJWT itself refuses to write."""

    def part(value: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signing_input = part(header) + b"." + part(claims)
    private = jwt.PyJWK.from_dict(jwk).key
    signature = base64.urlsafe_b64encode(private.sign(signing_input)).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "tenant:acme",
        "tenant": "acme",
        "scope": "goals:read",
        "iat": now,
        "exp": now + 600,
        "jti": "j1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "someone-else"}, "issuer"),
        ({"tenant": None}, "tenant"),
        ({"tenant": "Not A Tenant!"}, "tenant"),
        ({"exp": None}, "exp"),
        ({"jti": None}, "jti"),
        ({"iat": int(time.time()) + 3600}, "iat"),
        ({"nbf": int(time.time()) + 3600}, "not yet valid"),
    ],
)
def test_claims_are_checked(
    key_one: dict[str, Any], overrides: dict[str, Any], fragment: str
) -> None:
    token = jwt.encode(
        _claims(**overrides),
        jwt.PyJWK.from_dict(key_one),
        algorithm="EdDSA",
        headers={"kid": "k1"},
    )
    assert fragment in _refused(_verifier(key_one), token).lower()


def test_other_algorithms_are_refused(key_one: dict[str, Any]) -> None:
    unsigned = jwt.encode(_claims(), None, algorithm="none", headers={"kid": "k1"})  # type: ignore[arg-type]
    _refused(_verifier(key_one), unsigned)
    # The classic confusion: HMAC keyed with the public key's bytes.
    hmac = jwt.encode(_claims(), key_one["x"], algorithm="HS256", headers={"kid": "k1"})
    _refused(_verifier(key_one), hmac)


def test_revoked_tokens_are_refused(key_one: dict[str, Any]) -> None:
    token = _issuer(key_one).mint("acme")
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert "revoked" in _refused(_verifier(key_one, revoked=frozenset({jti})), token)


def test_keys_rotate_without_downtime(key_one: dict[str, Any], key_two: dict[str, Any]) -> None:
    old = _issuer(key_one).mint("acme")
    new = _issuer(key_two).mint("acme")
    during = _verifier(key_one, key_two)
    assert during.verify(old).tenant_id == during.verify(new).tenant_id == "acme"
    after = _verifier(key_two)
    assert after.verify(new).tenant_id == "acme"
    assert "unknown key" in _refused(after, old)


def test_the_newest_private_key_signs(
    tmp_path: Path, key_one: dict[str, Any], key_two: dict[str, Any]
) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, {"keys": [key_one, key_two]})
    settings = ServiceSettings(_env_file=None, auth_keys_file=path, environment="test")
    token = build_issuer(settings).mint("acme")
    assert jwt.get_unverified_header(token)["kid"] == "k2"
    assert build_verifier(settings).verify(token).tenant_id == "acme"
    public_only = tmp_path / "public.json"
    write_jwks(public_only, public_jwks(load_jwks(path)))
    verifier_only = ServiceSettings(_env_file=None, auth_keys_file=public_only, environment="test")
    with pytest.raises(ValueError, match="no private key"):
        build_issuer(verifier_only)
    assert build_verifier(verifier_only).verify(token).tenant_id == "acme"


def test_a_cached_token_still_expires(
    key_one: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = _verifier(key_one, leeway_seconds=0)
    token = _issuer(key_one).mint("acme", ttl=timedelta(minutes=5))
    assert verifier.verify(token).tenant_id == "acme"
    assert verifier.verify(token).tenant_id == "acme"  # from the cache
    later = time.time() + 600
    monkeypatch.setattr("shared.auth.tokens.time.time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _FrozenDatetime(later))
    assert "expired" in _refused(verifier, token)


class _FrozenDatetime:
    """Stands in for ``datetime`` inside PyJWT so its expiry check sees the same later time."""

    def __init__(self, at: float) -> None:
        self._at = at

    def now(self, tz: Any = None) -> datetime:
        return datetime.fromtimestamp(self._at, tz=tz)

    def __getattr__(self, name: str) -> Any:
        return getattr(datetime, name)


def test_the_token_command_mints_with_the_deployment_keys(
    tmp_path: Path, key_one: dict[str, Any]
) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, {"keys": [key_one]})
    env = {"FOLLOWTHROUGH_AUTH_KEYS_FILE": str(path), "FOLLOWTHROUGH_ENVIRONMENT": "test"}
    runner = CliRunner()
    minted = runner.invoke(cli, ["token", "--tenant", "acme", "--scopes", "goals:read"], env=env)
    assert minted.exit_code == 0, minted.output
    principal = _verifier(key_one).verify(minted.output.strip())
    assert (principal.tenant_id, principal.scopes) == ("acme", frozenset({"goals:read"}))
    everything = runner.invoke(cli, ["token", "--tenant", "acme"], env=env)
    assert _verifier(key_one).verify(everything.output.strip()).scopes == set(tokens.TENANT_SCOPES)
    for args in (["--tenant", "Bad Tenant"], ["--tenant", "acme", "--scopes", "goals:admin"]):
        refused = runner.invoke(cli, ["token", *args], env=env)
        assert refused.exit_code == 2
        assert "error:" in refused.output
    assert json.loads(path.read_text())["keys"][0]["kid"] == "k1"
