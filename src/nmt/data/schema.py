"""The one table layout every prepared split and test set is written with."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["PAIR_SCHEMA", "SchemaError", "pair_table", "read_pairs"]

PAIR_SCHEMA = pa.schema(
    [
        pa.field("src", pa.string(), nullable=False),  # normalised source: the model's input
        pa.field("tgt", pa.string(), nullable=False),  # normalised target: what it learns
        pa.field("ref", pa.string(), nullable=False),  # target as read, trimmed: BLEU reference
        pa.field("corpus", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    ]
)


class SchemaError(ValueError):
    """A prepared file does not have :data:`PAIR_SCHEMA`; the message names the file."""


def pair_table(
    src: Sequence[str], tgt: Sequence[str], ref: Sequence[str], corpus: str | Sequence[str]
) -> pa.Table:
    """Build a :data:`PAIR_SCHEMA` table; ``corpus`` is one name for all rows or one per row."""
    names = [corpus] * len(src) if isinstance(corpus, str) else list(corpus)
    return pa.table(
        {
            "src": pa.array(src, pa.string()),
            "tgt": pa.array(tgt, pa.string()),
            "ref": pa.array(ref, pa.string()),
            "corpus": pa.array(names, pa.string()).dictionary_encode(),
        }
    ).cast(PAIR_SCHEMA)


def read_pairs(path: str | os.PathLike[str]) -> pa.Table:
    """Read a prepared Parquet file as a :data:`PAIR_SCHEMA` table.

    Column names and types must match (nullability need not: a table built by hand is
    fine); otherwise :class:`SchemaError` names the file.
    """
    table = pq.read_table(path)
    got = [(f.name, f.type) for f in table.schema]
    if got != [(f.name, f.type) for f in PAIR_SCHEMA]:
        raise SchemaError(f"{os.fspath(path)}: columns {got} do not match PAIR_SCHEMA")
    return table.cast(PAIR_SCHEMA)
