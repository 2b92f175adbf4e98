"""PAIR_SCHEMA survives a Parquet round trip; read_pairs refuses other layouts."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nmt.data.schema import PAIR_SCHEMA, SchemaError, pair_table, read_pairs


def test_pair_schema_is_the_shared_contract() -> None:
    assert PAIR_SCHEMA.names == ["src", "tgt", "ref", "corpus"]
    assert PAIR_SCHEMA.field("src").type == pa.string()
    assert PAIR_SCHEMA.field("ref").type == pa.string()
    assert PAIR_SCHEMA.field("corpus").type == pa.dictionary(pa.int32(), pa.string())


def test_parquet_round_trip_keeps_schema_and_rows(tmp_path: Path) -> None:
    table = pair_table(
        ["le chat .", "où ?"], ["the cat .", "where ?"], ["The cat.", "Where?"], ["a", "b"]
    )
    assert table.schema.equals(PAIR_SCHEMA)
    pq.write_table(table, tmp_path / "t.parquet")
    back = read_pairs(tmp_path / "t.parquet")
    assert back.schema.equals(PAIR_SCHEMA)
    assert back.to_pydict() == table.to_pydict()
    assert back.column("corpus").to_pylist() == ["a", "b"]


def test_empty_table_round_trips(tmp_path: Path) -> None:
    pq.write_table(pair_table([], [], [], "x"), tmp_path / "e.parquet")
    assert read_pairs(tmp_path / "e.parquet").num_rows == 0


def test_read_pairs_names_a_file_with_another_schema(tmp_path: Path) -> None:
    pq.write_table(pa.table({"src": ["a"], "tgt": ["b"]}), tmp_path / "old.parquet")
    with pytest.raises(SchemaError, match="old.parquet"):
        read_pairs(tmp_path / "old.parquet")


def test_read_pairs_accepts_a_hand_made_table_with_the_right_types(tmp_path: Path) -> None:
    corpus = pa.array(["toy"]).dictionary_encode().cast(pa.dictionary(pa.int32(), pa.string()))
    table = pa.table({"src": ["a"], "tgt": ["b"], "ref": ["B"], "corpus": corpus})
    pq.write_table(table, tmp_path / "hand.parquet")
    assert read_pairs(tmp_path / "hand.parquet").schema.equals(PAIR_SCHEMA)
