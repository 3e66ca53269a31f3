"""The raster grid of a surface: cells of `cell` metres in a projected CRS, north-up."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """A north-up grid: left/top edge, square cell size and shape (rows, cols)."""

    left: float
    top: float
    cell: float
    rows: int
    cols: int

    @classmethod
    def covering(cls, minx: float, miny: float, maxx: float, maxy: float, cell: float) -> Grid:
        """The grid of whole cells (snapped to multiples of `cell`) that covers a box."""
        left = math.floor(minx / cell) * cell
        top = math.ceil(maxy / cell) * cell
        cols = max(1, math.ceil((maxx - left) / cell))
        rows = max(1, math.ceil((top - miny) / cell))
        return cls(left, top, cell, rows, cols)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy)."""
        return self.left, self.top - self.rows * self.cell, self.left + self.cols * self.cell, self.top

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """x and y of the cell centres, as 1-D arrays (x per column, y per row, top row first)."""
        x = self.left + (np.arange(self.cols) + 0.5) * self.cell
        y = self.top - (np.arange(self.rows) + 0.5) * self.cell
        return x, y
