"""A real OpenID Connect provider (oidc-provider-mock) on 127.0.0.1, for the auth tests and the auth benchmark.

Tokens come from its real authorize and token endpoints (authorization code + PKCE); nothing is forged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import requests


class OIDCProvider:
    """A real OpenID Connect provider (oidc-provider-mock) served on 127.0.0.1; tokens come from its endpoints."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def token(self, sub: str, claims: dict[str, object] | None = None, client_id: str = "sejong-map") -> str:
        """An ID token (RS256 JWT, aud = client_id) for a user, by the authorization-code flow with PKCE."""
        import base64
        import hashlib
        import secrets
        from urllib.parse import parse_qs, urlsplit

        requests.put(f"{self.issuer}/users/{sub}", json=claims or {}, timeout=10).raise_for_status()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        redirect = "http://127.0.0.1/callback"
        resp = requests.post(f"{self.issuer}/oauth2/authorize", params={
            "client_id": client_id, "redirect_uri": redirect, "response_type": "code", "scope": "openid profile",
            "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"},
            data={"sub": sub}, allow_redirects=False, timeout=10)
        assert resp.status_code == 302, resp.text
        code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
        tokens = requests.post(f"{self.issuer}/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "client_id": client_id,
            "code_verifier": verifier}, timeout=10)
        tokens.raise_for_status()
        return str(tokens.json()["id_token"])


def start_oidc_provider(**options: object):  # type: ignore[no-untyped-def]
    """Serve an oidc-provider-mock app on a free 127.0.0.1 port in a thread (a context manager of OIDCProvider)."""
    import contextlib
    import threading

    import oidc_provider_mock
    import werkzeug.serving

    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on loopback

    @contextlib.contextmanager
    def serve() -> Iterator[OIDCProvider]:
        server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(**options), threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            yield OIDCProvider(f"http://127.0.0.1:{server.server_port}")
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    return serve()
