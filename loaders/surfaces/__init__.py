"""Air-quality surfaces: station readings interpolated onto an EPSG:5186 grid, cross-validated, written as COGs.

`grid`, `interpolate`, `validation` and `surface` are pure numpy/scipy/pykrige (arrays in, arrays out; no
database, no files); `build` reads the readings from PostGIS, writes the COGs and meta.surfaces.
"""
