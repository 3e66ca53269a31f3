"""Sejong administrative map server: OGC API Features, Tiles and Processes on PostGIS."""
