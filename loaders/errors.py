"""Loader error type: one clear message naming the file, the line/feature and the column."""


class LoadError(Exception):
    """A load was refused; the previous data is untouched."""
