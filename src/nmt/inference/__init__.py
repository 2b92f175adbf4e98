"""Inference: greedy and beam search over a model's decoder steps (``search``), and text
in, text out with a trained model's tokenizers (``translate``)."""
