"""A Markdown table of BLEU/chrF per experiment, model and test set, from ``dvc exp show``.

DVC already knows every experiment's metrics; this module only reshapes its JSON
(``dvc exp show --json``) into a table fit for a pull-request comment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

EVAL_PREFIX = "metrics/eval/"
SEARCHES = ("beam", "greedy")


class ReportError(RuntimeError):
    pass


@dataclass(frozen=True)
class Row:
    experiment: str
    model: str
    test_set: str
    sentences: int
    scores: dict[str, dict[str, float]]  # search -> {"bleu": ..., "chrf": ...}


def exp_show_json(repo: str = ".", all_commits: bool = False) -> list[dict[str, Any]]:
    """Run ``dvc exp show --json`` in ``repo`` and return its parsed output."""
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    if all_commits:
        cmd.append("--all-commits")
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ReportError(f"dvc exp show failed in {repo}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def _revisions(entries: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, data) for each baseline revision and each experiment under it.

    The workspace is left out when its metrics are those of the commit after it (nothing
    was re-run since), so a table never shows the same results twice; so are experiments
    that are queued, running or failed (a running one shows its baseline's metrics).
    """
    if (
        len(entries) > 1
        and entries[0]["rev"] == "workspace"
        and (entries[0].get("data") or {}).get("metrics")
        == (entries[1].get("data") or {}).get("metrics")
    ):
        entries = entries[1:]
    for entry in entries:
        rev = entry["rev"]
        name = entry.get("name") or (rev[:7] if len(rev) == 40 else rev)
        if entry.get("data"):
            yield name, entry["data"]
        for exp in entry.get("experiments") or []:
            state = (exp.get("executor") or {}).get("state", "success")
            if state != "success":
                continue  # queued, running or failed: no results of its own yet
            for rev in exp.get("revs") or []:
                if rev.get("data"):
                    yield rev.get("name") or exp.get("name") or rev["rev"][:7], rev["data"]


def rows_from_exp_show(entries: list[dict[str, Any]]) -> list[Row]:
    """Flatten ``dvc exp show --json`` into one row per (experiment, model, test set)."""
    rows = []
    for name, data in _revisions(entries):
        for path, metric in sorted((data.get("metrics") or {}).items()):
            if not (path.startswith(EVAL_PREFIX) and path.count("/") == 2):
                continue  # only metrics/eval/<model>.json, not compare/ or plots
            model = path[len(EVAL_PREFIX) :].removesuffix(".json")
            for test_set, entry in sorted((metric.get("data") or {}).items()):
                if not isinstance(entry, dict) or "sentences" not in entry:
                    continue  # settings, signatures
                scores = {s: entry[s] for s in SEARCHES if isinstance(entry.get(s), dict)}
                rows.append(Row(name, model, test_set, int(entry["sentences"]), scores))
    return rows


def _fmt(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "–"


def markdown_table(rows: list[Row]) -> str:
    """A GitHub-flavoured Markdown table; one line per row, scores to one decimal."""
    head = ["Experiment", "Model", "Test set", "Sentences"]
    head += [f"{m} ({s})" for s in SEARCHES for m in ("BLEU", "chrF")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * 5]
    for r in rows:
        cells = [r.experiment, r.model, r.test_set, str(r.sentences)]
        for search in SEARCHES:
            got = r.scores.get(search, {})
            cells += [_fmt(got.get("bleu")), _fmt(got.get("chrf"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
