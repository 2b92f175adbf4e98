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
    # none: no attention (the context is the encoder's final state, see feed_final);
    # bahdanau: additive, queried by the previous state, the context fed to the step;
    # additive: the same score queried by the step's output (the context is not fed);
    # dot / general: Luong's multiplicative scores, queried by the current state;
    # location: the PyTorch tutorial's, weights from [embedding; previous state] over a
    # fixed number of source slots (attention_slots), the context fed to the step.
    attention: Literal["none", "bahdanau", "additive", "dot", "general", "location"] = "bahdanau"
    # additive scores: v^T tanh(W_q q + W_k k) (true), or the plain sum of tanh(...) over
    # its units, without v (false, as TensorFlow's NMT tutorial writes it)
    attention_v: bool = True
    # location: source positions the weights cover; later positions are not attended
    attention_slots: int = Field(10, ge=1)
    # attention none: the encoder's final state is fed to every step and to the readout
    # (Cho et al. 2014; true), or is only the decoder's initial state (Sutskever et al.
    # 2014; false, with bridge: identity)
    feed_final: bool = True
    # How the decoder's first state comes from the encoder's final state: tanh of a
    # linear map (Bahdanau et al.), a linear map, zeros, or the encoder's final state
    # itself (identity: one direction, as many layers and units as the decoder).
    bridge: Literal["tanh", "linear", "zeros", "identity"] = "tanh"
    # What the output layer reads: tanh of a linear map of [state; context] to the
    # embedding size (so it can be tied), or [state; context] itself.
    readout: Literal["tanh", "none"] = "tanh"
    output_bias: bool = False  # a bias in the output layer
    tie_embeddings: bool = False
    # Token inputs: learned embeddings, or fixed one-hot vectors (embedding_dim is then
    # the vocabulary size, and unused).
    inputs: Literal["embedding", "onehot"] = "embedding"
    # Markers added to each source sentence before it is encoded: none, <eos> after it,
    # or <sos> before and <eos> after.
    source_markers: Literal["none", "eos", "sos_eos"] = "none"
    # Applied to every input of the decoder's recurrent net (the embedding, or with
    # location attention the combined input): none, or a ReLU.
    decoder_activation: Literal["none", "relu"] = "none"
    # How many times each decoder step applies its recurrent net, with the same weights,
    # the output of one pass the input of the next (and decoder_activation before each).
    decoder_passes: int = Field(1, ge=1)
    # Where dropout applies: the source embeddings, the target embeddings, the features
    # the readout reads.
    dropout_on: list[Literal["source", "target", "readout"]] = Field(
        default_factory=lambda: ["source", "target", "readout"]
    )

    @model_validator(mode="after")
    def _consistent(self) -> RNNParams:
        fixed_context = self.attention == "none" and self.feed_final
        if not self.feed_final and self.attention != "none":
            raise ValueError("feed_final: false applies to attention: none only")
        if self.bridge == "identity" and (
            self.bidirectional or self.encoder_layers != self.decoder_layers
        ):
            raise ValueError(
                "bridge: identity needs a one-direction encoder with as many layers "
                "as the decoder (bidirectional: false, encoder_layers = decoder_layers)"
            )
        if self.decoder_passes > 1:
            if fixed_context or self.attention != "none" or self.decoder_layers != 1:
                raise ValueError(
                    "decoder_passes > 1 needs attention: none, feed_final: false and one "
                    "decoder layer (each pass feeds its output to the next)"
                )
            if self.inputs != "embedding" or self.embedding_dim != self.hidden_dim:
                raise ValueError(
                    "decoder_passes > 1 needs inputs: embedding with embedding_dim = hidden_dim"
                )
        if self.inputs == "onehot" and self.tie_embeddings:
            raise ValueError("tie_embeddings needs inputs: embedding")
        if len(set(self.dropout_on)) != len(self.dropout_on):
            raise ValueError("dropout_on: each place at most once")
        return self


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
