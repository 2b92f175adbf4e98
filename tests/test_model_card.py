from nmt.config import parse_params
from nmt.model_card import render_model_card

PARAMS = parse_params(
    {
        "data": {"corpora": ["tatoeba", "europarl"], "test_sets": ["newstest2014"]},
        "average": {"last": 2},
    }
)
CHECKPOINT = {
    "src_lang": "fr",
    "tgt_lang": "en",
    "model_params": {
        "arch": "rnn", "cell": "gru", "attention": "bahdanau", "bidirectional": True,
        "encoder_layers": 1, "decoder_layers": 1, "hidden_dim": 256, "embedding_dim": 128,
    },
    "delivered": {"epochs": [4, 5], "average_last": 2},
}  # fmt: skip
TRAIN = {
    "parameters": 8246528, "final_epoch": 5, "best_epoch": 5, "train_pairs": 161020,
    "valid_pairs": 500, "best": {"valid_bleu": 37.85}, "train_seconds": 1558.4,
    "train_tokens_per_s": 2046.3, "device": "cpu/fp32", "torch_threads": 2,
}  # fmt: skip
EVALUATION = {
    "heldout": {
        "sentences": 3443,
        "beam": {"bleu": 35.74, "chrf": 52.0},
        "greedy": {"bleu": 31.55, "chrf": 50.13},
    },
    "newstest2014": {
        "sentences": 3003,
        "beam": {"bleu": 1.35, "chrf": 17.16},
        "greedy": {"bleu": 1.15, "chrf": 16.55},
    },
    "settings": {"beam_size": 5, "length_penalty": 1.0},
    "signatures": {"bleu": "nrefs:1|case:mixed|tok:13a", "chrf": "nrefs:1|nc:6"},
}  # fmt: skip
DATA = {
    "corpora": {
        "tatoeba": {"read": 167130, "kept": 166876},
        "europarl": {"read": 3000, "kept": 2677},
    },
    "test_sets": {"newstest2014": {"read": 3003, "kept": 3003}},
    "splits": {"train": 161020, "valid": 3367, "test": 3443, "newstest2014": 3003},
}  # fmt: skip
VOCAB = {"kind": "subword", "joint": True, "src_vocab_size": 8000, "tgt_vocab_size": 8000}


def card() -> str:
    return render_model_card("attention", CHECKPOINT, PARAMS, TRAIN, EVALUATION, DATA, VOCAB)


def test_the_card_names_the_model_and_how_it_was_made():
    text = card()
    assert text.startswith("# attention: fr → en\n")
    assert "GRU encoder-decoder, bahdanau attention: bidirectional encoder" in text
    assert "8,246,528 parameters" in text
    assert "the average of the weights of epochs 4-5, of 5 epoch(s) trained" in text
    assert "nmt serve --model models/attention" in text


def test_the_card_reports_scores_with_their_signatures():
    text = card()
    assert "| heldout | 3,443 | 35.7 | 52.0 | 31.6 | 50.1 |" in text
    assert "| newstest2014 | 3,003 | 1.4 | 17.2 | 1.1 | 16.6 |" in text
    assert "- BLEU signature: `nrefs:1|case:mixed|tok:13a`" in text
    assert "(beam 5, length penalty 1.0)" in text


def test_the_card_lists_each_corpus_with_its_size_and_terms():
    text = card()
    assert "| tatoeba | 167,130 | 166,876 | www.manythings.org/anki" in text
    assert "CC BY 2.0 FR" in text
    assert "| europarl | 3,000 | 2,677 | Koehn (2005)" in text
    assert "| newstest2014 | 3,003 | 3,003 | WMT14" in text and "research use" in text
    assert "161,020 training pairs" in text and "8,000 source and 8,000 target" in text


def test_the_card_carries_the_params_and_the_training_speed():
    text = card()
    assert "5 epoch(s) in 26.0 min on cpu/fp32 (2 threads): 2,046 target tokens" in text
    params_block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "average:\n  last: 2\n" in params_block and "hidden_dim: 256" in params_block
    assert "keep_epochs: 5" in params_block


def test_a_best_epoch_model_says_so():
    single = {**CHECKPOINT, "delivered": {"epochs": [5], "average_last": 1}}
    text = render_model_card("m", single, PARAMS, TRAIN, EVALUATION, DATA, VOCAB)
    assert "the best epoch by valid_bleu (epoch 5)" in text
