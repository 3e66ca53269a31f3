"""Identity: OpenID Connect tokens from a real provider on 127.0.0.1, API keys by ./run keys, security headers.

No token is forged by patching the validator: good tokens come from the provider's real authorize/token endpoints,
bad ones are real tokens altered byte by byte (or signed by another real provider).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask, jsonify
from process_helpers import wait_for
from pydantic import ValidationError

from bench.oidc import OIDCProvider, start_oidc_provider
from core.config import AuthConfig, load_config
from server import auth
from server.app import close_app
from server.cli import run_keys

ROLE_MAP = {"gis-team": "department", "editors": "editor", "city-admin": "admin"}
TILE = "/collections/bike_stations/tiles/WebMercatorQuad/12/1601/3496"  # Sejong City Hall
ITEMS = "/collections/bike_stations/items?limit=2"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def make_app(dsn: str, loaded: dict[str, int]) -> Iterator[Callable[..., Flask]]:
    """Apps on the test database with an auth section, each with a /_whoami route showing auth.current()."""
    from server.app import create_app

    made: list[Flask] = []

    def make(**auth_options: Any) -> Flask:
        cfg = load_config()
        app = create_app(cfg.model_copy(update={"auth": AuthConfig(**auth_options)}))
        app.config["TESTING"] = True

        @app.route("/_whoami")
        def _whoami() -> Any:
            who = auth.current()
            return jsonify(subject=who.subject, roles=sorted(who.roles), via=who.via, name=who.name,
                           editor=auth.has_any_role(["editor", "admin"]))

        made.append(app)
        return app

    yield make
    for app in made:
        close_app(app)


@pytest.fixture(scope="module")
def oidc_app(make_app: Callable[..., Flask], oidc_provider: OIDCProvider) -> Flask:
    """Auth on, trusting the test provider by discovery."""
    return make_app(enabled=True, issuer=oidc_provider.issuer, audience="sejong-map", role_map=ROLE_MAP)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refused(resp: Any, why: str) -> None:
    """401, OGC exception JSON, and a Bearer invalid_token challenge naming why."""
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert resp.is_json and resp.get_json()["code"] == "Unauthorized"
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="sejong-mapserver", error="invalid_token", error_description="')
    assert why in challenge and why in resp.get_json()["description"]


# --- OpenID Connect ----------------------------------------------------------------------------------------------


def test_valid_token_maps_roles(oidc_app: Flask, oidc_provider: OIDCProvider) -> None:
    token = oidc_provider.token("kim", {"roles": ["gis-team", "editors", "unmapped"], "name": "김민수"})
    client = oidc_app.test_client()
    for _ in range(2):  # the second answer comes from the token cache
        resp = client.get("/_whoami", headers=_bearer(token))
        assert resp.status_code == 200
        assert resp.get_json() == {"subject": "kim", "roles": ["department", "editor"], "via": "oidc",
                                   "name": "김민수", "editor": True}
    nested = oidc_provider.token("lee", {"realm_access": {"roles": ["city-admin"]}})
    assert client.get("/_whoami", headers=_bearer(nested)).get_json()["roles"] == []  # roles_claim is `roles`
    assert client.get("/_whoami").get_json() == {"subject": None, "roles": [], "via": "anonymous", "name": None,
                                                 "editor": False}


def test_roles_claim_dotted_path(make_app: Callable[..., Flask], oidc_provider: OIDCProvider) -> None:
    app = make_app(enabled=True, issuer=oidc_provider.issuer, audience="sejong-map", role_map=ROLE_MAP,
                   roles_claim="realm_access.roles")
    token = oidc_provider.token("park", {"realm_access": {"roles": ["city-admin"]}})
    assert app.test_client().get("/_whoami", headers=_bearer(token)).get_json()["roles"] == ["admin"]


def test_wrong_audience(oidc_app: Flask, oidc_provider: OIDCProvider) -> None:
    token = oidc_provider.token("kim", {"roles": ["gis-team"]}, client_id="another-app")
    _refused(oidc_app.test_client().get("/_whoami", headers=_bearer(token)), "audience")


def test_wrong_issuer(make_app: Callable[..., Flask], oidc_provider: OIDCProvider) -> None:
    """The provider's own keys (jwks_url), but this server expects another issuer."""
    app = make_app(enabled=True, issuer="https://sso.sejong.go.kr/realms/city", jwks_url=f"{oidc_provider.issuer}/jwks",
                   audience="sejong-map")
    token = oidc_provider.token("kim")
    _refused(app.test_client().get("/_whoami", headers=_bearer(token)), "another issuer")


def test_unknown_key(oidc_app: Flask, oidc_provider: OIDCProvider) -> None:
    with start_oidc_provider() as other:
        token = other.token("kim", {"roles": ["gis-team"]})
    client = oidc_app.test_client()
    client.get("/_whoami", headers=_bearer(oidc_provider.token("kim")))  # the provider's keys are fetched
    _refused(client.get("/_whoami", headers=_bearer(token)), "key this server does not know")


def test_alg_none_and_hmac_with_the_public_key(oidc_app: Flask, oidc_provider: OIDCProvider) -> None:
    _, payload, _ = oidc_provider.token("kim", {"roles": ["city-admin"]}).split(".")
    client = oidc_app.test_client()
    unsigned = f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}."
    _refused(client.get("/_whoami", headers=_bearer(unsigned)), "algorithm 'none' is not allowed")
    # HMAC keyed with the provider's real public key, as an attacker would fetch it
    public = json.dumps(requests.get(f"{oidc_provider.issuer}/jwks", timeout=10).json()["keys"][0]).encode()
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    mac = hmac.new(public, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    _refused(client.get("/_whoami", headers=_bearer(f"{head}.{payload}.{_b64(mac)}")), "'HS256' is not allowed")


def test_tampered_payload(oidc_app: Flask, oidc_provider: OIDCProvider) -> None:
    header, payload, signature = oidc_provider.token("kim", {"roles": ["gis-team"]}).split(".")
    claims = json.loads(_unb64(payload))
    claims["roles"] = ["city-admin"]
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    _refused(oidc_app.test_client().get("/_whoami", headers=_bearer(forged)), "Signature verification failed")
    _refused(oidc_app.test_client().get("/_whoami", headers=_bearer("not-a-jwt")), "not a JWT")


def test_expired_token_with_and_without_leeway(make_app: Callable[..., Flask]) -> None:
    with start_oidc_provider(access_token_max_age=timedelta(seconds=2)) as short:
        strict = make_app(enabled=True, issuer=short.issuer, audience="sejong-map", leeway_s=0)
        lenient = make_app(enabled=True, issuer=short.issuer, audience="sejong-map", leeway_s=30)
        token = short.token("kim", {"roles": ["gis-team"]})
        exp = json.loads(_unb64(token.split(".")[1]))["exp"]
        assert strict.test_client().get("/_whoami", headers=_bearer(token)).status_code == 200  # cached now
        time.sleep(max(0.0, exp - time.time()) + 0.2)
        _refused(strict.test_client().get("/_whoami", headers=_bearer(token)), "expired")  # the cache knows exp
        assert lenient.test_client().get("/_whoami", headers=_bearer(token)).status_code == 200  # clock skew


def test_config_refuses_symmetric_algorithms() -> None:
    for algs in (["none"], ["HS256"], ["RS256", "HS512"], []):
        with pytest.raises(ValidationError, match="asymmetric"):
            AuthConfig(algorithms=algs)
    with pytest.raises(ValidationError, match="audience"):
        AuthConfig(enabled=True, issuer="https://sso.example")
    assert AuthConfig().enabled is False  # a config without `auth:` loads, with authentication off


def test_credentials_refused_when_auth_is_off(client: Any, oidc_provider: OIDCProvider) -> None:
    """The default config (auth off): anonymous as before, but credentials are refused, never silently ignored."""
    assert client.get(ITEMS).status_code == 200
    _refused(client.get(ITEMS, headers=_bearer(oidc_provider.token("kim"))), "not enabled")
    _refused(client.get(ITEMS, headers={"X-API-Key": "sjk_000000000000_" + "A" * 43}), "not enabled")
    assert client.get(ITEMS, headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 200  # not ours


# --- API keys ----------------------------------------------------------------------------------------------------


def _create(dsn: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert run_keys(["create", *args], dsn) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert re.fullmatch(r"sjk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key)
    return key, key.split("_")[1]


def _listed(dsn: str, capsys: pytest.CaptureFixture[str]) -> dict[str, list[str]]:
    assert run_keys(["list"], dsn) == 0
    return {line.split("\t")[0]: line.split("\t") for line in capsys.readouterr().out.splitlines()}


def test_api_key_lifecycle(oidc_app: Flask, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    key, key_id = _create(dsn, capsys, "tiles-sync (도시정보과)", "--roles", "department,editor")
    row = _listed(dsn, capsys)[key_id]
    assert row[1:3] == ["tiles-sync (도시정보과)", "department,editor"] and row[4:] == ["never", "active"]
    import psycopg2

    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:  # stored hashed: the secret is nowhere in the table
        cur.execute("SELECT secret_sha256, row_to_json(k)::text FROM meta.api_keys k WHERE key_id = %s", (key_id,))
        stored, whole = cur.fetchone()
    conn.close()
    assert stored == hashlib.sha256(key.split("_", 2)[2].encode()).hexdigest() and key.split("_", 2)[2] not in whole

    client = oidc_app.test_client()
    for headers in (_bearer(key), {"X-API-Key": key}):
        assert client.get("/_whoami", headers=headers).get_json() == {
            "subject": f"api-key:{key_id}", "roles": ["department", "editor"], "via": "api-key",
            "name": "tiles-sync (도시정보과)", "editor": True}
    _refused(client.get("/_whoami", headers={"X-API-Key": key[:-1] + ("B" if key[-1] != "B" else "C")}),
             "unknown API key")
    time.sleep(0.3)  # the server's listener for key changes is connected
    assert client.get("/_whoami", headers={"X-API-Key": key}).status_code == 200  # cached

    assert run_keys(["revoke", key_id], dsn) == 0
    revoked = wait_for(lambda: client.get("/_whoami", headers={"X-API-Key": key}), lambda r: r.status_code == 401,
                       5, "the revocation reaching the server")
    _refused(revoked, "revoked")
    assert _listed(dsn, capsys)[key_id][5] == "revoked"
    assert run_keys(["revoke", key_id], dsn) == 1  # already revoked


def test_api_key_expiry(oidc_app: Flask, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert run_keys(["create", "old", "--expires", past], dsn) == 2  # refused: already expired
    assert run_keys(["create", "bad", "--roles", "Department!"], dsn) == 2
    capsys.readouterr()
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    key, key_id = _create(dsn, capsys, "short", "--roles", "department", "--expires", soon.isoformat())
    client = oidc_app.test_client()
    assert client.get("/_whoami", headers=_bearer(key)).get_json()["roles"] == ["department"]
    time.sleep(max(0.0, soon.timestamp() - time.time()) + 0.1)
    _refused(client.get("/_whoami", headers=_bearer(key)), "expired")
    assert _listed(dsn, capsys)[key_id][5] == "expired"
    _, far_id = _create(dsn, capsys, "yearly", "--expires", "2999-01-01")
    assert _listed(dsn, capsys)[far_id][4] == "2999-01-01T00:00:00+00:00"


# --- anonymous access is unchanged -------------------------------------------------------------------------------


def test_anonymous_public_requests_unchanged(oidc_app: Flask, oidc_provider: OIDCProvider, client: Any) -> None:
    token = oidc_provider.token("kim", {"roles": ["gis-team"]})
    auth_client = oidc_app.test_client()
    for path in (ITEMS, "/collections", TILE, "/styles/default", "/tiles/WebMercatorQuad/12/1601/3496"):
        before = client.get(path)
        anonymous, signed_in = auth_client.get(path), auth_client.get(path, headers=_bearer(token))
        assert before.status_code == anonymous.status_code == signed_in.status_code == 200, path
        assert anonymous.get_data() == before.get_data(), path
    tile = auth_client.get(TILE, headers=_bearer(token))
    assert "public" not in tile.headers.get("Cache-Control", "")  # an authenticated answer is never shared
    assert auth_client.get(TILE).headers["Cache-Control"] == client.get(TILE).headers["Cache-Control"]


# --- security headers --------------------------------------------------------------------------------------------


def test_security_headers_on_pages(client: Any) -> None:
    for path in ("/map", "/citizen", "/?f=html", "/collections?f=html", "/collections/bike_stations?f=html"):
        resp = client.get(path)
        assert resp.status_code == 200 and resp.mimetype == "text/html", path
        csp = dict(d.strip().split(" ", 1) for d in resp.headers["Content-Security-Policy"].split(";"))
        assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
        assert csp["frame-ancestors"] == "'none'" and csp["default-src"] == "'none'"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        html = resp.get_data(as_text=True)
        for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
            if "src=" in attrs or 'type="application/json"' in attrs:
                continue  # a file from this server, or data the browser never runs
            assert 'type="importmap"' in attrs, f"{path}: inline script {body[:60]!r}"
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in csp["script-src"].split(), path  # exactly this import map
    api = client.get("/collections")
    assert api.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" not in api.headers


def test_pages_may_reach_the_provider(oidc_app: Flask, oidc_provider: OIDCProvider, client: Any) -> None:
    """With sign-in configured, /map may exchange its code at the provider's token endpoint; without, only here."""
    signing_in = oidc_app.test_client().get("/map").headers["Content-Security-Policy"]
    assert f"connect-src 'self' {load_config().server.url} {oidc_provider.issuer};" in signing_in
    assert oidc_provider.issuer not in client.get("/map").headers["Content-Security-Policy"]


def test_cors_never_wildcard_with_credentials(client: Any) -> None:
    resp = client.options(ITEMS, headers={"Origin": "https://gis.example.kr", "Access-Control-Request-Method": "GET",
                                          "Access-Control-Request-Headers": "authorization"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in resp.headers
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
