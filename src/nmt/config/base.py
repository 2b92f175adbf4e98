"""The base class of every params section: unknown keys are errors, objects are frozen,
and a float must be finite (``.inf`` or ``.nan`` in YAML is refused, naming the key)."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# torch's CPU threads: "auto" (nmt.threads.available_cpus) or a count.
Threads = Literal["auto"] | Annotated[int, Field(ge=1, strict=True)]
