"""Teacher-forcing schedules: the probability of feeding the reference token at an epoch.

Pure functions of the (0-based) epoch, following the decays of Bengio et al. (2015),
"Scheduled Sampling for Sequence Prediction with Recurrent Neural Networks".
"""

from __future__ import annotations

import math

from nmt.config.train import TeacherForcingParams


def schedule_factor(params: TeacherForcingParams, epoch: int) -> float:
    """f(epoch) in [0, 1] of ``params.schedule`` (see :class:`TeacherForcingParams`)."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if params.schedule == "constant":
        return 1.0
    if params.schedule == "linear":
        return max(0.0, 1.0 - params.slope * epoch)
    if params.schedule == "exponential":
        return params.base**epoch
    if params.schedule == "inverse_sigmoid":
        k = params.k
        # exp(i/k) overflows for huge epochs; the factor is 0 there anyway.
        return k / (k + math.exp(min(epoch / k, 700.0)))
    raise ValueError(f"unknown teacher-forcing schedule {params.schedule!r}")


def teacher_forcing_ratio(params: TeacherForcingParams, epoch: int) -> float:
    """The ratio in force at ``epoch``: ``max(min_ratio, ratio * f(epoch))``."""
    return max(params.min_ratio, params.ratio * schedule_factor(params, epoch))
