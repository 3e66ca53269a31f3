"""Who is asking: OpenID Connect bearer tokens (JWTs checked against the provider's JWKS) and API keys.

`current()` is the caller's Identity in every view (anonymous without credentials). Credentials that do not hold
(bad signature, expired, wrong issuer or audience, unknown key, `alg: none`, revoked or expired API key) answer 401
with `WWW-Authenticate: Bearer error="invalid_token"`, also when authentication is off (`auth.enabled: false`):
credentials are never silently ignored. Only the `Bearer` scheme and `X-API-Key` are read; other schemes (Basic from
a proxy) leave the caller anonymous.

Hot path: a verified token is cached by its raw string until it expires, an API key look-up for at most 1 s.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from flask import Flask, Response, g, has_request_context, request

from core.config import AuthConfig
from core.errors import OGCError, ServiceUnavailable, Unauthorized
from server import services
from server.apikeys import PREFIX, KeyStore

LOGGER = logging.getLogger(__name__)

EXTENSION = "sejong_auth"
REALM = "sejong-mapserver"
ADMIN = "admin"  # the role that sees, reads and dismisses every job and every result layer
JWKS_MIN_REFRESH_S = 10.0  # an unknown `kid` refetches the provider's keys at most this often
TOKEN_CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller: who (subject), what they may do (roles), how they proved it (via), and a display name."""

    subject: str | None
    roles: frozenset[str]
    via: Literal["anonymous", "oidc", "api-key"]
    name: str | None = None

    @property
    def anonymous(self) -> bool:
        """True when no credentials were presented."""
        return self.via == "anonymous"

    @property
    def owner(self) -> str | None:
        """What owns this caller's jobs and result layers (see owner_of); None when anonymous."""
        return owner_of(self)

    @property
    def admin(self) -> bool:
        """True when the caller holds the admin role (every job and result layer)."""
        return ADMIN in self.roles


def owner_of(identity: Identity) -> str | None:
    """The owner of a caller's jobs (meta.jobs.owner): `api-key:<key id>` or `oidc:<sub>`; None when anonymous."""
    if identity.anonymous or not identity.subject:
        return None
    if identity.via == "api-key" and identity.subject.startswith("api-key:"):
        return identity.subject
    return f"{identity.via}:{identity.subject}"


ANONYMOUS = Identity(None, frozenset(), "anonymous")


def _quoted(text: str) -> str:
    """A value RFC 6750 allows inside a quoted error_description (printable ASCII without quote and backslash)."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)[:200]


def challenge(description: str, error: str | None = "invalid_token") -> OGCError:
    """401 with a Bearer challenge: error=invalid_token for bad credentials, none (error=None) for missing ones."""
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}", error_description="{_quoted(description)}"'
    return Unauthorized(description, headers={"WWW-Authenticate": value})


def current() -> Identity:
    """The identity of the request being handled (anonymous outside a request or without credentials)."""
    if not has_request_context():
        return ANONYMOUS
    found: Identity = g.get("identity", ANONYMOUS)
    return found


def has_any_role(roles: Iterable[str]) -> bool:
    """True when the caller holds at least one of the roles."""
    return not current().roles.isdisjoint(roles)


def _claim(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (realm_access.roles), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class TokenVerifier:
    """Validates JWTs of one OpenID provider: signature by a JWKS key, allowed algorithm, iss, aud, exp (+ leeway)."""

    def __init__(self, cfg: AuthConfig) -> None:
        self.cfg = cfg
        self._client: jwt.PyJWKClient | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = float("-inf")
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Identity]] = {}  # raw token -> (valid until, identity)

    def verify(self, token: str) -> Identity:
        """The identity a token proves; Unauthorized, or ServiceUnavailable when the provider's keys are unreachable."""
        hit = self._cache.get(token)
        if hit is not None and time.time() < hit[0]:
            return hit[1]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise challenge("the bearer token is not a JWT") from None
        alg = header.get("alg")
        if alg not in self.cfg.algorithms:  # `none` and HS* never are
            raise challenge(f"token algorithm {alg!r} is not allowed")
        key = self._key(header.get("kid"))
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=self.cfg.audience, issuer=self.cfg.issuer,
                                leeway=self.cfg.leeway_s, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise challenge("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise challenge("the token is not for this server (audience)") from None
        except jwt.InvalidIssuerError:
            raise challenge("the token is from another issuer") from None
        except jwt.PyJWTError as err:
            raise challenge(f"invalid token: {err}") from None
        identity = self._identity(claims)
        if len(self._cache) >= TOKEN_CACHE_MAX:
            now = time.time()
            self._cache = {t: v for t, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= TOKEN_CACHE_MAX:
                self._cache.clear()
        self._cache[token] = (float(claims["exp"]) + self.cfg.leeway_s, identity)
        return identity

    def _identity(self, claims: dict[str, Any]) -> Identity:
        values = _claim(claims, self.cfg.roles_claim)
        if isinstance(values, str):
            values = values.split()
        if not isinstance(values, list):
            values = []
        roles = frozenset(self.cfg.role_map[v] for v in values if isinstance(v, str) and v in self.cfg.role_map)
        name = claims.get("name") or claims.get("preferred_username") or claims.get("email")
        return Identity(str(claims["sub"]), roles, "oidc", str(name) if name else None)

    def _key(self, kid: str | None) -> jwt.PyJWK:
        """The signing key by kid (the only key when the token names none); refetch on an unknown kid, rate-limited."""
        key = self._find(kid)
        if key is None:
            with self._lock:
                key = self._find(kid)
                if key is None and time.monotonic() - self._fetched >= JWKS_MIN_REFRESH_S:
                    self._refresh()
                    key = self._find(kid)
        if key is None:
            raise challenge("the token is signed by a key this server does not know")
        return key

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _refresh(self) -> None:
        """Fetch the provider's JWKS (discovering jwks_uri first when not configured)."""
        self._fetched = time.monotonic()
        try:
            if self._client is None:
                self._client = jwt.PyJWKClient(self._jwks_url(), cache_jwk_set=False, timeout=5)
            keys = self._client.get_signing_keys(refresh=True)
        except (jwt.PyJWKClientError, OSError, ValueError) as err:
            LOGGER.warning("cannot fetch the identity provider's keys: %s", err)
            raise ServiceUnavailable("the identity provider's keys cannot be fetched; retry shortly",
                                     headers={"Retry-After": "10"}) from None
        self._keys = {k.key_id or f"#{i}": k for i, k in enumerate(keys)}

    def _jwks_url(self) -> str:
        if self.cfg.jwks_url:
            return self.cfg.jwks_url
        url = self.cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=5) as resp:  # the configured issuer, never a token's
            doc = json.loads(resp.read())
        if doc.get("issuer", "").rstrip("/") != self.cfg.issuer.rstrip("/"):
            raise ValueError(f"discovery at {url} names issuer {doc.get('issuer')!r}, not {self.cfg.issuer!r}")
        return str(doc["jwks_uri"])


class Authenticator:
    """Turns a request's credentials into an Identity."""

    def __init__(self, cfg: AuthConfig, keys: KeyStore) -> None:
        self.cfg = cfg
        self.tokens = TokenVerifier(cfg) if cfg.enabled and cfg.issuer else None
        self.keys = keys

    def identify(self, authorization: str | None, api_key: str | None) -> Identity:
        """The identity of a request's Authorization and X-API-Key headers (anonymous when neither holds any)."""
        credential = api_key
        if authorization is not None:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() != "bearer":
                return ANONYMOUS if credential is None else self._credential(credential.strip())
            if credential is not None and credential.strip() != value.strip():
                raise challenge("send one credential: Authorization and X-API-Key differ", "invalid_request")
            credential = value
        return ANONYMOUS if credential is None else self._credential(credential.strip())

    def _credential(self, credential: str) -> Identity:
        if not self.cfg.enabled:
            raise challenge("authentication is not enabled on this server; send no credentials")
        if credential.startswith(PREFIX):
            return self._api_key(credential)
        if self.tokens is None:
            raise challenge("this server accepts API keys only (no OpenID provider is configured)")
        return self.tokens.verify(credential)

    def _api_key(self, raw: str) -> Identity:
        key = self.keys.lookup(raw)
        if key is None:
            raise challenge("unknown API key")
        if key.revoked_at is not None:
            raise challenge("the API key has been revoked")
        if not key.usable():
            raise challenge("the API key has expired")
        return Identity(f"api-key:{key.key_id}", frozenset(key.roles), "api-key", key.name)


def of(app: Flask) -> Authenticator:
    """The authenticator of an app."""
    found: Authenticator = app.extensions[EXTENSION]
    return found


def install(app: Flask) -> None:
    """Identify every request's caller before its view runs (g.identity); authenticated answers are not shared."""
    shared = services.of(app)
    authenticator = Authenticator(shared.config.auth, KeyStore(shared.db))
    app.extensions[EXTENSION] = authenticator

    @app.before_request
    def _identify() -> None:
        headers = request.headers
        authorization, api_key = headers.get("Authorization"), headers.get("X-API-Key")
        if authorization is not None or api_key is not None:
            g.identity = authenticator.identify(authorization, api_key)

    @app.after_request
    def _private(resp: Response) -> Response:
        if "identity" in g and g.identity.via != "anonymous":
            cache = resp.headers.get("Cache-Control")
            if cache and "public" in cache:  # an answer to a caller with roles is never for shared caches
                resp.headers["Cache-Control"] = cache.replace("public", "private")
        return resp
