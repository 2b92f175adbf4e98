"""Data preparation: read raw corpora, normalise and filter pairs, split, write Parquet.

Modules: ``schema`` (the Parquet layout), ``readers`` (TSV / aligned / SGML, streamed in
chunks), ``normalize`` (the :class:`Normalizer`), ``filters`` (drop reasons),
``process`` (per-chunk work, on a process pool), ``prepare`` (combine, split, write).
"""

from nmt.data.normalize import Normalizer
from nmt.data.schema import PAIR_SCHEMA, read_pairs

__all__ = ["PAIR_SCHEMA", "Normalizer", "read_pairs"]
