"""Korean air-quality grade bands (환경부 통합대기환경지수 PM breakpoints) and their map colours."""

from __future__ import annotations

import numpy as np

# upper bounds (inclusive) of 좋음, 보통, 나쁨; above the last is 매우나쁨
BANDS = {"pm10": (30.0, 80.0, 150.0), "pm25": (15.0, 35.0, 75.0)}
GRADES = (("좋음", "good"), ("보통", "moderate"), ("나쁨", "bad"), ("매우나쁨", "very bad"))
# the same colours as styles/air_quality.json: 좋음 blue, 보통 green, 나쁨 orange, 매우나쁨 red
COLOURS = ((0x1E, 0x6F, 0xD9), (0x2E, 0x9E, 0x44), (0xF2, 0x92, 0x00), (0xD7, 0x26, 0x1E))
ALPHA = 170


def grade_index(values: np.ndarray, pollutant: str) -> np.ndarray:
    """0..3 per value (좋음..매우나쁨): v <= 30 is 좋음 for PM10, as meta.pm10_grade grades the stations."""
    return np.searchsorted(np.asarray(BANDS[pollutant]), values, side="left").astype(np.uint8)


def colourise(values: np.ndarray, pollutant: str) -> np.ndarray:
    """RGBA (rows, cols, 4) uint8: grade colours, transparent where the value is NaN (nodata)."""
    rgba = np.zeros((*values.shape, 4), dtype=np.uint8)
    valid = np.isfinite(values)
    idx = grade_index(np.where(valid, values, 0.0), pollutant)
    palette = np.array([(*c, ALPHA) for c in COLOURS], dtype=np.uint8)
    rgba[valid] = palette[idx[valid]]
    return rgba


def legend(pollutant: str) -> list[dict[str, object]]:
    """The bands with their labels and colours, for metadata and map legends."""
    lows = (0.0, *(b + 1 for b in BANDS[pollutant]))
    highs: tuple[float | None, ...] = (*BANDS[pollutant], None)
    return [{"ko": ko, "en": en, "min": lo, "max": hi, "colour": "#{:02x}{:02x}{:02x}".format(*c)}
            for (ko, en), lo, hi, c in zip(GRADES, lows, highs, COLOURS, strict=True)]
