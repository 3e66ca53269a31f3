"""python -m loaders.surfaces [--force]."""

import sys

from loaders.surfaces.build import main

sys.exit(main())
