"""Params of one model (an entry of ``models:`` in params.yaml).

One params class per architecture, told apart by ``arch``; :data:`ModelParams` is their
union. An entry without ``arch`` is a recurrent model (``arch: rnn``), as params files
and checkpoints written before there was a choice are.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, TypeAdapter, model_validator

from nmt.config.base import StrictModel


class RNNParams(StrictModel):
    """A recurrent encoder-decoder (GRU, LSTM or plain RNN cells), with or without
    attention; saved inside every checkpoint."""

    arch: Literal["rnn"] = "rnn"
    cell: Literal["gru", "lstm", "rnn"] = "gru"
    embedding_dim: int = Field(256, ge=1)
    hidden_dim: int = Field(256, ge=1)
    encoder_layers: int = Field(1, ge=1)
    decoder_layers: int = Field(1, ge=1)
    bidirectional: bool = True
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    # none: the context is the encoder's final state, fed to every step (Cho et al.);
    # bahdanau: additive, queried by the previous state, the context fed to the step;
    # dot / general: Luong's multiplicative scores, queried by the current state.
    attention: Literal["none", "bahdanau", "dot", "general"] = "bahdanau"
    # How the decoder's first state comes from the encoder's final state: tanh of a
    # linear map (Bahdanau et al.), a linear map, or zeros.
    bridge: Literal["tanh", "linear", "zeros"] = "tanh"
    # What the output layer reads: tanh of a linear map of [state; context] to the
    # embedding size (so it can be tied), or [state; context] itself.
    readout: Literal["tanh", "none"] = "tanh"
    tie_embeddings: bool = False


class TransformerParams(StrictModel):
    """A pre-norm Transformer encoder-decoder (Vaswani et al. 2017, with the layer norm
    before each sublayer as in most toolkits since); saved inside every checkpoint."""

    arch: Literal["transformer"]
    model_dim: int = Field(256, ge=1)
    heads: int = Field(4, ge=1)
    ff_dim: int = Field(1024, ge=1)
    encoder_layers: int = Field(3, ge=1)
    decoder_layers: int = Field(3, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    # sinusoidal: fixed, any length; learned: one vector per position up to max_positions
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_positions: int = Field(512, ge=1)
    tie_embeddings: bool = True  # the output layer is the target embedding matrix
    # one embedding matrix for source and target (a joint vocabulary of one size)
    share_embeddings: bool = False

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerParams:
        if self.model_dim % self.heads:
            raise ValueError(
                f"model_dim ({self.model_dim}) must be a multiple of heads ({self.heads})"
            )
        return self


def _arch(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("arch", "rnn")
    return getattr(value, "arch", "rnn")


ModelParams = Annotated[
    Annotated[RNNParams, Tag("rnn")] | Annotated[TransformerParams, Tag("transformer")],
    Discriminator(
        _arch,
        custom_error_type="unknown_arch",
        custom_error_message="arch must be one of: rnn, transformer",
    ),
]

_ADAPTER: TypeAdapter[RNNParams | TransformerParams] = TypeAdapter(ModelParams)


def parse_model_params(raw: Any) -> RNNParams | TransformerParams:
    """Validate one model's params (a mapping, e.g. from a checkpoint); raises
    :class:`pydantic.ValidationError`."""
    return _ADAPTER.validate_python(raw)


__all__ = [
    "ModelParams",
    "RNNParams",
    "TransformerParams",
    "parse_model_params",
]
