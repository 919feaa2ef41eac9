"""Raw text in, raw text out: tokenize, search, detokenize, score.

A sentence longer than the model's limit (the `--max-length` source
tokens it was trained with, which is also the length of the exported
encoder) is translated from its first `max_length` tokens, with a warning
naming its line; an empty line translates to an empty line, so the output
has as many lines as the input.
"""

import logging

import numpy as np

logger = logging.getLogger(__name__)

METHODS = ("greedy", "beam", "sample")
_MAX_LISTED = 5


def source_ids(tokenizer, texts, max_length, name="input"):
    """Source ids of each text, None for an empty one; those longer than
    `max_length` are cut to it, with a warning naming their lines."""
    encoded = tokenizer.encode_source([t.strip() for t in texts])
    long = [i + 1 for i, ids in enumerate(encoded) if len(ids) > max_length]
    if long:
        shown = ", ".join(map(str, long[:_MAX_LISTED]))
        more = f" and {len(long) - _MAX_LISTED} more" if len(long) > _MAX_LISTED else ""
        logger.warning(
            "%s: line(s) %s%s are longer than the model's limit of %d source tokens: "
            "each is translated from its first %d tokens",
            name,
            shown,
            more,
            max_length,
            max_length,
        )
    return [ids[:max_length] if ids else None for ids in encoded]


def padded(rows):
    """0-padded int32 `(len(rows), longest)`."""
    out = np.zeros((len(rows), max(len(r) for r in rows)), np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def batches_by_length(sources, batch_size):
    """Indices of the non-empty sources in batches of similar length."""
    order = sorted((i for i, s in enumerate(sources) if s), key=lambda i: len(sources[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def search_options(beam, length_penalty=0.6, max_length=None):
    """`model.generate` arguments: greedy for `beam` <= 1, else beam search."""
    if beam and beam > 1:
        return dict(
            method="beam", beam_width=beam, length_penalty=length_penalty, max_length=max_length
        )
    return dict(method="greedy", max_length=max_length)


def generate_ids(model, sources, beam=0, batch_size=64, length_penalty=0.6, max_length=None):
    """The best translation's target ids of each source (a list, `[]` for a
    None source), up to and without EOS, by `model.generate`."""
    options = search_options(beam, length_penalty, max_length)
    out = [[] for _ in sources]
    for rows in batches_by_length(sources, batch_size):
        ids = model.generate(padded([sources[i] for i in rows]), **options)[0]
        for i, row in zip(rows, np.asarray(ids)[:, 0]):
            out[i] = cut(row, model.eos_id)
    return out


def cut(row, eos_id):
    """Ids up to the first EOS (or padding), without it."""
    ids = []
    for token in np.asarray(row).tolist():
        if token == eos_id or token == 0:
            break
        ids.append(int(token))
    return ids


def translate(model, tokenizer, texts, max_length, beam=0, batch_size=64, length_penalty=0.6):
    """Translations of `texts` (a list of str), one per text."""
    ids = generate_ids(
        model,
        source_ids(tokenizer, texts, max_length),
        beam=beam,
        batch_size=batch_size,
        length_penalty=length_penalty,
    )
    return tokenizer.decode_target(ids)


def score(hypotheses, references):
    """sacreBLEU's corpus BLEU and chrF (detokenized text, its default 13a
    tokenizer, cased), with their signatures."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} translations but {len(references)} references")
    bleu, chrf = sacrebleu.BLEU(), sacrebleu.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": round(float(bleu_score.score), 2),
        "chrf": round(float(chrf_score.score), 2),
        "bleu_detail": str(bleu_score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def attention_map(model, tokenizer, sentence, max_length, beam=0, length_penalty=0.6):
    """The translation of one sentence and where the decoder looked.

    Returns:
        `(text, weights, source_pieces, target_pieces)`: weights
        `(target steps, source steps)`, one row per written piece and one
        for the EOS where it was written.
    """
    sources = source_ids(tokenizer, [sentence], max_length, "sentence")
    if sources[0] is None:
        raise ValueError("the sentence is empty")
    options = search_options(beam, length_penalty)
    ids, _, weights = model.generate(padded(sources), return_attention=True, **options)
    target = cut(np.asarray(ids)[0, 0], model.eos_id)
    rows = min(len(target) + 1, np.asarray(weights).shape[2])
    matrix = np.asarray(weights)[0, 0, :rows, : len(sources[0])]
    labels = tokenizer.target_pieces(target) + ["</s>"]
    return (
        tokenizer.decode_target([target])[0],
        matrix,
        tokenizer.source_pieces(sources[0]),
        labels[:rows],
    )


def plot_attention(weights, source_pieces, target_pieces, title=None):
    """A heatmap of attention weights `(target steps, source steps)`: each
    row is where the decoder looked to write that target piece. Returns the
    matplotlib figure (shown inline in a notebook, or saved)."""
    from matplotlib import pyplot as plt

    weights = np.asarray(weights, "float32")
    rows, cols = weights.shape
    fig, ax = plt.subplots(figsize=(max(4, 0.45 * cols + 2), max(3, 0.4 * rows + 1.5)), dpi=100)
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(cols), source_pieces, rotation=70, fontsize=9)
    ax.set_yticks(range(rows), target_pieces, fontsize=9)
    ax.set_xlabel("source pieces")
    ax.set_ylabel("translation pieces")
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    return fig
