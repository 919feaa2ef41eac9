"""Scores of a tagger against gold tags: token accuracy, accuracy on unseen
words, per-tag precision/recall/F1 and a confusion matrix (PNG)."""

import collections

import numpy as np

from .text import normalize_word


def score(gold, predicted, known_words=None, known_tags=None):
    """Compares predicted tags with the gold sentences.

    Args:
        gold: list of `Sentence` (tokens and gold tags).
        predicted: list of tag lists, one per sentence, of the same lengths.
        known_words: the normalized words of the training data
            (`normalize_word`); a token whose normalized form is not in it is
            *unseen*. None skips the unseen-word accuracy.
        known_tags: the tags the tagger can predict; gold tags outside it are
            counted (they are always errors) and reported.

    Returns:
        dict with "tokens", "correct", "accuracy", "unseen_tokens",
        "unseen_correct", "unseen_accuracy" (None without unseen tokens or
        `known_words`), "per_tag" ({tag: {"precision", "recall", "f1",
        "support", "predicted"}}), "macro_f1", "unknown_tags" ({tag: count}),
        "labels" and "confusion" (rows gold, columns predicted, in "labels"
        order: gold tags by frequency, then tags only predicted).
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    pairs, unseen = [], []
    for i, (sentence, tags) in enumerate(zip(gold, predicted)):
        if len(sentence.tags) != len(tags):
            raise ValueError(
                f"sentence {i + 1}: {len(sentence.tags)} gold tags but {len(tags)} predicted"
            )
        pairs.extend(zip(sentence.tags, tags))
        if known_words is not None:
            unseen.extend(normalize_word(t) not in known_words for t in sentence.tokens)
    if not pairs:
        raise ValueError("nothing to score: no tokens")
    gold_tags = np.array([g for g, _ in pairs], dtype=object)
    pred_tags = np.array([p for _, p in pairs], dtype=object)
    right = gold_tags == pred_tags
    gold_counts = collections.Counter(gold_tags.tolist())
    pred_counts = collections.Counter(pred_tags.tolist())
    labels = [t for t, _ in sorted(gold_counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    labels += sorted(set(pred_counts) - set(gold_counts))
    per_tag = {}
    for tag in labels:
        tp = int(np.sum(right & (gold_tags == tag)))
        precision = tp / pred_counts[tag] if pred_counts[tag] else 0.0
        recall = tp / gold_counts[tag] if gold_counts[tag] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_tag[tag] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": gold_counts[tag],
            "predicted": pred_counts[tag],
        }
    where = {t: i for i, t in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), np.int64)
    np.add.at(confusion, ([where[g] for g in gold_tags], [where[p] for p in pred_tags]), 1)
    report = {
        "tokens": len(pairs),
        "correct": int(right.sum()),
        "accuracy": float(right.mean()),
        "unseen_tokens": None,
        "unseen_correct": None,
        "unseen_accuracy": None,
        "per_tag": per_tag,
        "macro_f1": float(np.mean([per_tag[t]["f1"] for t in gold_counts])),
        "unknown_tags": {},
        "labels": labels,
        "confusion": confusion.tolist(),
    }
    if known_words is not None:
        unseen = np.array(unseen, bool)
        report["unseen_tokens"] = int(unseen.sum())
        report["unseen_correct"] = int((right & unseen).sum())
        if unseen.any():
            report["unseen_accuracy"] = float(right[unseen].mean())
    if known_tags is not None:
        known_tags = set(known_tags)
        report["unknown_tags"] = {t: n for t, n in gold_counts.items() if t not in known_tags}
    return report


def _percent(part, whole):
    return f"{100.0 * part / whole:6.2f}%" if whole else "   n/a "


def format_report(report, per_tag=True):
    """The report as text, the way `evaluate` prints it."""
    lines = [
        f"token accuracy:       {_percent(report['correct'], report['tokens'])} "
        f"({report['correct']} of {report['tokens']} tokens)",
    ]
    if report["unseen_tokens"] is not None:
        lines.append(
            f"unseen-word accuracy: {_percent(report['unseen_correct'], report['unseen_tokens'])} "
            f"({report['unseen_correct']} of {report['unseen_tokens']} tokens whose word is "
            "not in the training data)"
        )
    if report["unknown_tags"]:
        listing = ", ".join(f"{t} ({n})" for t, n in sorted(report["unknown_tags"].items()))
        lines.append(
            f"note: {sum(report['unknown_tags'].values())} tokens have gold tags the model was "
            f"not trained on, counted as errors: {listing}"
        )
    if per_tag:
        lines.append("")
        lines.append(f"{'tag':<10} {'precision':>9} {'recall':>9} {'F1':>9} {'support':>8}")
        for tag, s in report["per_tag"].items():
            lines.append(
                f"{tag:<10} {100 * s['precision']:8.2f}% {100 * s['recall']:8.2f}% "
                f"{100 * s['f1']:8.2f}% {s['support']:8d}"
            )
        lines.append(f"{'macro F1':<10} {'':>9} {'':>9} {100 * report['macro_f1']:8.2f}%")
    return "\n".join(lines)


def save_confusion_png(report, path, title=None):
    """Writes the confusion matrix (rows: gold, columns: predicted; colour:
    share of the gold tag's tokens; counts printed when there are at most 25
    tags) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = report["labels"]
    counts = np.asarray(report["confusion"])
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = max(5.0, 0.38 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted tag")
    ax.set_ylabel("gold tag")
    if len(labels) <= 25:
        for i, j in zip(*np.nonzero(counts)):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if shares[i, j] > 0.5 else "black",
            )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the gold tag")
    ax.set_title(
        title or f"confusion matrix, accuracy {100 * report['accuracy']:.2f}%", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
