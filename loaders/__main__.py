"""Entry point for ``python -m loaders``."""

from loaders.cli import main

raise SystemExit(main())
