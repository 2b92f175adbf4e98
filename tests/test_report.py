from nmt.evaluation.report import markdown_table, rows_from_exp_show

SCORES = {"sentences": 3, "beam": {"bleu": 12.54, "chrf": 40.1}, "greedy": {"bleu": 11.0}}


def entry(rev: str, name: str | None, bleu: float, experiments=None) -> dict:
    metrics = {
        "metrics/eval/attention.json": {
            "data": {"heldout": {**SCORES, "beam": {"bleu": bleu, "chrf": 40.1}}, "settings": {}}
        },
        "metrics/eval/compare/a_vs_b.json": {"data": {"heldout": {"p_value": 0.01}}},
        "metrics/train/attention.json": {"data": {"best_epoch": 3}},
    }
    return {"rev": rev, "name": name, "data": {"metrics": metrics}, "experiments": experiments}


def test_rows_cover_baselines_and_experiments_and_skip_other_metrics():
    exp = {
        "name": "tf-half",
        "revs": [{"rev": "f" * 40, "name": "tf-half", **entry("x", None, 20.0)}],
    }
    rows = rows_from_exp_show(
        [entry("workspace", None, 12.5), entry("a" * 40, "main", 13.0, [exp])]
    )
    assert [(r.experiment, r.model, r.test_set) for r in rows] == [
        ("workspace", "attention", "heldout"),
        ("main", "attention", "heldout"),
        ("tf-half", "attention", "heldout"),
    ]
    assert [r.scores["beam"]["bleu"] for r in rows] == [12.5, 13.0, 20.0]


def test_markdown_table_is_one_line_per_row_with_placeholders():
    rows = rows_from_exp_show([entry("a" * 40, None, 12.54)])
    table = markdown_table(rows).splitlines()
    assert table[0].startswith("| Experiment | Model | Test set | Sentences | BLEU (beam)")
    assert table[2] == "| aaaaaaa | attention | heldout | 3 | 12.5 | 40.1 | 11.0 | – |"


def test_an_unchanged_workspace_is_not_listed_twice():
    same = rows_from_exp_show([entry("workspace", None, 12.5), entry("a" * 40, "main", 12.5)])
    assert [r.experiment for r in same] == ["main"]


def test_queued_running_and_failed_experiments_are_left_out():
    def exp(name: str, state: str | None) -> dict:
        executor = {"executor": {"state": state}} if state else {}
        return {"name": name, **executor, "revs": [{"name": name, **entry(name, name, 1.0)}]}

    states = {"done": "success", "old": None, "busy": "running", "later": "queued", "bad": "failed"}
    entries = [entry("a" * 40, "main", 13.0, [exp(n, s) for n, s in states.items()])]
    assert [r.experiment for r in rows_from_exp_show(entries)] == ["main", "done", "old"]
