"""A layer whose table is dropped under a running server (a dismissed or expired result layer): 404 for it,
never a 500, and composite tiles keep the other layers."""

from __future__ import annotations

import math

import psycopg2
from mapbox_vector_tile import decode

from core.config import LayerConfig, load_config
from server.app import close_app


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    col = int((lon + 180) / 360 * n)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return row, col


def test_dropped_table_is_404_and_composite_tiles_keep_the_rest(dsn: str, loaded: dict[str, int]) -> None:
    from server.app import create_app

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS public.vanishing")
        cur.execute("CREATE TABLE public.vanishing AS SELECT id, name, geom FROM public.bike_stations LIMIT 20")
    cfg = load_config()
    layers = dict(cfg.layers)
    layers["vanishing"] = LayerConfig.model_validate({
        "title": {"ko": "사라짐", "en": "vanishing"}, "table": "public.vanishing",
        "description": {"ko": "시험", "en": "test"}, "tiles": {"minzoom": 5, "maxzoom": 16}})
    app = create_app(cfg.model_copy(update={"layers": layers}))
    client = app.test_client()
    row, col = _tile_of(127.289, 36.48, 9)
    dataset_tile = f"/tiles/WebMercatorQuad/9/{row}/{col}?collections=vanishing,bike_stations"
    before = decode(client.get(dataset_tile).get_data())
    assert {"vanishing", "bike_stations"} <= set(before)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE public.vanishing")
    row, col = _tile_of(127.289, 36.48, 10)  # a tile not rendered (so not cached) before the drop
    after = client.get(f"/tiles/WebMercatorQuad/10/{row}/{col}?collections=vanishing,bike_stations")
    assert after.status_code == 200
    assert set(decode(after.get_data())) == {"bike_stations"}
    assert len(decode(after.get_data())["bike_stations"]["features"]) > 0
    tile = f"/collections/vanishing/tiles/WebMercatorQuad/10/{row}/{col + 1}"
    for url in ("/collections/vanishing/items?limit=1", tile):
        resp = client.get(url)
        assert resp.status_code == 404 and resp.get_json()["code"] == "NotFound", (url, resp.status_code)
    assert "vanishing" not in {c["id"] for c in client.get("/collections").get_json()["collections"]}
    close_app(app)
