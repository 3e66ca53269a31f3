"""Data loaders: CSV / vector files / air-quality readings into PostGIS (EPSG:5186), atomically."""
