import math
from itertools import pairwise

import pytest
from pydantic import ValidationError

from nmt.config.train import TeacherForcingParams
from nmt.training.teacher_forcing import schedule_factor, teacher_forcing_ratio


def tf(**kw) -> TeacherForcingParams:
    return TeacherForcingParams(**kw)


def test_constant_keeps_the_ratio():
    p = tf(ratio=0.7, schedule="constant")
    assert [teacher_forcing_ratio(p, e) for e in range(4)] == [0.7] * 4


def test_linear_decays_by_slope_and_stops_at_the_floor():
    p = tf(ratio=1.0, schedule="linear", slope=0.25, min_ratio=0.2)
    got = [teacher_forcing_ratio(p, e) for e in range(6)]
    assert got == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.2, 0.2])


def test_exponential_multiplies_by_base_each_epoch():
    p = tf(ratio=0.8, schedule="exponential", base=0.5)
    assert [teacher_forcing_ratio(p, e) for e in range(3)] == pytest.approx([0.8, 0.4, 0.2])


def test_inverse_sigmoid_follows_bengio_et_al():
    p = tf(ratio=1.0, schedule="inverse_sigmoid", k=4.0)
    for e in (0, 3, 10):
        assert teacher_forcing_ratio(p, e) == pytest.approx(4 / (4 + math.exp(e / 4)))
    values = [schedule_factor(p, e) for e in range(30)]
    assert all(a > b for a, b in pairwise(values))
    assert schedule_factor(p, 10**9) == pytest.approx(0.0)  # no overflow


@pytest.mark.parametrize("schedule", ["constant", "linear", "exponential", "inverse_sigmoid"])
def test_every_schedule_stays_in_range_and_never_increases(schedule):
    p = tf(ratio=0.9, schedule=schedule, min_ratio=0.1)
    values = [teacher_forcing_ratio(p, e) for e in range(50)]
    assert all(0.1 <= v <= 0.9 for v in values)
    assert all(a >= b for a, b in pairwise(values))


def test_negative_epoch_and_bad_params_are_errors():
    with pytest.raises(ValueError, match="epoch"):
        schedule_factor(tf(), -1)
    with pytest.raises(ValidationError, match="min_ratio"):
        tf(ratio=0.3, min_ratio=0.5)
    with pytest.raises(ValidationError):
        tf(ratio=1.5)
