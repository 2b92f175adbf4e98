"""nmt: a reproducible DVC pipeline for neural machine translation."""

from nmt.threads import _at_package_import

__version__ = "0.1.0"

# Before torch loads libgomp, which reads how its threads wait only then (nmt.threads).
_at_package_import()
