"""Data: fetch the corpora and turn them into Parquet.

Modules: ``corpora`` (the registry of corpora and test sets), ``download`` and
``archive`` (fetch and unpack, with checksums), ``schema`` (the Parquet layout),
``readers`` (TSV / aligned / SGML, streamed in chunks), ``normalize`` (the
:class:`~nmt.data.normalize.Normalizer`), ``filters`` (drop reasons), ``process``
(per-chunk work, on a process pool), ``prepare`` (combine, split, write).
"""
