"""The core every package may import: configuration, CRS, tile matrix sets, OGC errors, the database pool."""
