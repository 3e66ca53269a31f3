"""The serving model: layers declared in config.yml resolved against PostGIS, and the SQL that serves them."""
