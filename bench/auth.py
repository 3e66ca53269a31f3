"""python -m bench.auth: what authentication costs on a cached tile and an items page, against the same request
anonymous, interleaved in one run (target: at most +0.1 ms at p50).

Needs DATABASE_URL (./run bench sets it) with the bundled data loaded. Tokens come from a real OpenID Connect
provider (oidc-provider-mock) started on 127.0.0.1; the API key is made with the server's own key store.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bench.oidc import start_oidc_provider
from core.config import AuthConfig, database_url, load_config
from server.apikeys import create_key, revoke_key
from server.app import create_app

PATHS = {"cached tile": "/collections/bike_stations/tiles/WebMercatorQuad/12/1601/3496",  # Sejong City Hall
         "items page": "/collections/bike_stations/items?limit=10"}


def _p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main(argv: list[str] | None = None) -> int:
    """Print p50 per caller kind and the added cost of a token and of an API key."""
    ap = argparse.ArgumentParser(prog="python -m bench.auth", description=__doc__)
    ap.add_argument("--reps", type=int, default=2000, help="requests per path and caller kind (default 2000)")
    args = ap.parse_args(argv)
    dsn = database_url()
    with start_oidc_provider() as provider:
        cfg = load_config()
        auth = AuthConfig(enabled=True, issuer=provider.issuer, audience="sejong-map",
                          role_map={"gis-team": "department"})
        app = create_app(cfg.model_copy(update={"auth": auth}))
        client = app.test_client()
        key_info, key = create_key(dsn, "bench-auth", ["department"])
        token = provider.token("bench", {"roles": ["gis-team"]})
        kinds: dict[str, dict[str, str]] = {"anonymous": {}, "token": {"Authorization": f"Bearer {token}"},
                                            "api key": {"X-API-Key": key}}
        try:
            for name, path in PATHS.items():
                times: dict[str, list[float]] = {k: [] for k in kinds}
                for i in range(args.reps + 100):
                    for kind, headers in kinds.items():
                        start = time.perf_counter()
                        resp: Any = client.get(path, headers=headers)
                        elapsed = time.perf_counter() - start
                        if resp.status_code != 200:
                            raise SystemExit(f"{name} as {kind}: HTTP {resp.status_code}")
                        if i >= 100:  # warm-up: caches, JWKS, key lookup
                            times[kind].append(elapsed)
                p50 = {k: _p50_ms(v) for k, v in times.items()}
                print(f"{name:12s} p50 ms: anonymous {p50['anonymous']:.3f}, token {p50['token']:.3f} "
                      f"({p50['token'] - p50['anonymous']:+.3f}), api key {p50['api key']:.3f} "
                      f"({p50['api key'] - p50['anonymous']:+.3f})")
        finally:
            revoke_key(dsn, key_info.key_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
