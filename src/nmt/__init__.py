"""nmt: a reproducible DVC pipeline for neural machine translation."""

__version__ = "0.1.0"
