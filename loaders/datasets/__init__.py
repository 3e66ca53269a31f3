"""Bundled-data recipes, one module per dataset id (usually the layer id of config.yml that serves it)."""
