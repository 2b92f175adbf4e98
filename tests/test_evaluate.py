import pytest

from nmt.config.evaluate import CompareParams, ComparisonPair, EvaluateParams
from nmt.evaluation.evaluate import search_settings


def test_search_settings_and_params():
    params = EvaluateParams(beam_size=3, length_penalty=0.6, max_length_extra=4)
    searches = search_settings(params)
    assert searches["greedy"].beam_size == 1 and searches["beam"].beam_size == 3
    assert searches["greedy"].max_length_extra == searches["beam"].max_length_extra == 4
    with pytest.raises(ValueError, match="different"):
        ComparisonPair(baseline="gru", candidate="gru")
    assert CompareParams().pairs["attention_vs_gru"].candidate == "attention"
    assert CompareParams(pairs={}).pairs == {}
    with pytest.raises(ValueError, match="pair names"):
        CompareParams(pairs={"a b": {"baseline": "x", "candidate": "y"}})
    with pytest.raises(ValueError):
        EvaluateParams(beam_size=0)
