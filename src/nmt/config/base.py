"""The base class of every params section: unknown keys are errors, objects are frozen,
and a float must be finite (``.inf`` or ``.nan`` in YAML is refused, naming the key)."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
