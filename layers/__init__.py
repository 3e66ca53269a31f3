"""Per-layer modules: one per layer id in config.yml (bundled-data recipe, catalog text, PROPERTIES)."""
