"""The model card: a Markdown page that travels with a trained model (Mitchell et al.
2019, "Model Cards for Model Reporting"), written by the pipeline from what it measured.

It says what the model is, the data it was trained on (with the sizes and the terms of
each corpus), the params that made it, its sacreBLEU scores with their signatures and its
training speed, so that a model handed on (``dvc artifacts get``) explains itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from nmt.config import Params
from nmt.data.corpora import get_corpus

CARD_FILE = "model_card.md"


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).rstrip()


def _int(n: Any) -> str:
    return f"{int(n):,}"


def _architecture(model: Mapping[str, Any]) -> str:
    if model.get("arch") == "transformer":
        return (
            f"Transformer, {model['encoder_layers']}+{model['decoder_layers']} layers of "
            f"{model['model_dim']} ({model['heads']} heads, feed-forward {model['ff_dim']})"
        )
    attention = model.get("attention", "none")
    kind = "no attention" if attention == "none" else f"{attention} attention"
    direction = "bidirectional " if model.get("bidirectional") else ""
    return (
        f"{model.get('cell', 'gru').upper()} encoder-decoder, {kind}: {direction}encoder of "
        f"{model['encoder_layers']} layer(s), decoder of {model['decoder_layers']}, hidden "
        f"{model['hidden_dim']}, embeddings {model['embedding_dim']}"
    )


def render_model_card(
    name: str,
    checkpoint: Mapping[str, Any],
    params: Params,
    train: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    data: Mapping[str, Any],
    vocab: Mapping[str, Any],
) -> str:
    """The card of model ``name``, as Markdown.

    ``checkpoint``: the delivered checkpoint's record without weights (``model_params``,
    ``src_lang``, ``tgt_lang``, ``delivered``); ``train``, ``evaluation``, ``data``,
    ``vocab``: the metrics JSON of the train, evaluate, prepare and vocab stages.
    """
    src, tgt = checkpoint["src_lang"], checkpoint["tgt_lang"]
    model = dict(checkpoint["model_params"])
    delivered = checkpoint.get("delivered", {})
    epochs = delivered.get("epochs", [train.get("best_epoch")])
    if delivered.get("average_last", 1) > 1:
        made = f"the average of the weights of epochs {epochs[0]}-{epochs[-1]}"
    else:
        made = f"the best epoch by {params.train.early_stopping.metric} (epoch {epochs[0]})"
    lines = [
        f"# {name}: {src} → {tgt}",
        "",
        f"{_architecture(model)}; {_int(train['parameters'])} parameters. Its weights are "
        f"{made}, of {train['final_epoch']} epoch(s) trained.",
        "",
        "```bash",
        f'echo "..." | nmt translate --model models/{name}',
        f"nmt serve --model models/{name}",
        "```",
        "",
        "## Scores",
        "",
        "sacreBLEU on detokenised output, greedy and beam search "
        f"(beam {evaluation['settings']['beam_size']}, length penalty "
        f"{evaluation['settings']['length_penalty']}).",
        "",
        "| Test set | Sentences | BLEU (beam) | chrF (beam) | BLEU (greedy) | chrF (greedy) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for test_set, entry in evaluation.items():
        if test_set in ("settings", "signatures"):
            continue
        b, g = entry["beam"], entry["greedy"]
        lines.append(
            f"| {test_set} | {_int(entry['sentences'])} | {b['bleu']:.1f} | {b['chrf']:.1f} "
            f"| {g['bleu']:.1f} | {g['chrf']:.1f} |"
        )
    signatures = evaluation.get("signatures", {})
    lines += ["", *(f"- {k.upper()} signature: `{v}`" for k, v in signatures.items())]
    best = train.get("best", {})
    if "valid_bleu" in best:
        lines.append(
            f"- Validation (greedy, first {_int(train['valid_pairs'])} pairs of the valid "
            f"split) at the best epoch: BLEU {best['valid_bleu']:.2f}"
        )

    splits = data.get("splits", {})
    lines += [
        "",
        "## Data",
        "",
        f"{_int(train['train_pairs'])} training pairs; splits: "
        + ", ".join(f"{k} {_int(v)}" for k, v in splits.items())
        + f". Vocabulary: {vocab.get('kind')} ({params.vocab.model_type} for subwords), "
        f"{_int(vocab['src_vocab_size'])} source and {_int(vocab['tgt_vocab_size'])} "
        f"target entries{' (joint)' if vocab.get('joint') else ''}.",
        "",
        "| Corpus | Pairs read | Kept | Source | Terms |",
        "|---|---:|---:|---|---|",
    ]
    counts = {**data.get("corpora", {}), **data.get("test_sets", {})}
    for corpus_name in [*params.data.corpora, *params.data.test_sets]:
        corpus = get_corpus(corpus_name, params.data.src_lang, params.data.tgt_lang)
        c = counts.get(corpus_name, {})
        lines.append(
            f"| {corpus_name} | {_int(c.get('read', 0))} | {_int(c.get('kept', 0))} "
            f"| {corpus.credit} | {corpus.terms} |"
        )
    lines += [
        "",
        "The model's weights are derived from these corpora: their terms apply to it "
        "(attribution, where they ask for it).",
        "",
        "## Training",
        "",
        f"{train['final_epoch']} epoch(s) in {train['train_seconds'] / 60:.1f} min on "
        f"{train['device']} ({train['torch_threads']} threads): "
        f"{_int(train['train_tokens_per_s'])} target tokens per second"
        + (" (stopped early)" if train.get("stopped_early") else "")
        + ".",
        "",
        "## Params",
        "",
        "```yaml",
        _yaml(
            {
                "seed": params.seed,
                "model": model,
                "train": params.train.model_dump(mode="json"),
                "average": params.average.model_dump(mode="json"),
                "vocab": params.vocab.model_dump(mode="json"),
                "data": params.data.model_dump(mode="json"),
            }
        ),
        "```",
        "",
    ]
    return "\n".join(lines)
