"""Export of a trained sentiment model for serving and for mobile.

`export` writes, into one folder:

- ``saved_model/``: a TensorFlow SavedModel whose ``serve`` endpoint (and
  ``serving_default`` signature) takes raw strings ``(batch,)`` and returns
  class probabilities ``(batch, classes)``; tokenisation is inside.
- ``model.tflite``: the classifier alone, on token ids: input ``token_ids``
  int32 ``(1, max_length)``, 0-padded after the text; output float32
  ``(1, classes)``. It is `keras_deeprnn.export.export_tflite`'s sequence
  mode (TFLite builtin ops only, checked against Keras; the recurrence is a
  ``WHILE`` loop over the hoisted input projection).
- ``vocab.txt``: the vocabulary, one token a line; line i (from 0) is id i.
  Line 0 is ``[PAD]`` (id 0, padding) and line 1 ``[UNK]`` (id 1, every
  token not in the file).
- ``labels.txt``: the label names, line i is class i.
- ``tokenizer.json``: how to turn a text into ids (also in ``README.md``).
- ``manifest.json``: versions, the exports' specs and the sha256 of every
  file (`keras_deeprnn.export.check_manifest` refuses a changed folder).
"""

import json
from pathlib import Path

from keras_deeprnn.export import export_tflite
from keras_deeprnn.export import write_manifest

from .model import parts

TOKENIZER_STEPS = [
    "lower-case the text (Unicode lower-casing)",
    "replace '<br />' (any '<br>' tag) by a space",
    "replace the quotes \u2018 \u2019 and ` by an apostrophe (')",
    "replace control, format and separator characters (Unicode categories C and Z: "
    "tabs, newlines, no-break spaces, ...) by a space",
    "put a space before and after every character that is not a letter, a digit, "
    "a combining mark, an apostrophe or white space (so punctuation marks are "
    "tokens of their own: 'great!' -> 'great', '!')",
    "split at white space; drop empty tokens",
    "map each token to its line number in vocab.txt, or to 1 ([UNK]) if absent",
    "keep the first max_length ids; pad with 0 up to max_length",
]


def export(model, out_dir, label_names, metrics=None, fuse_lstm=False):
    """Writes the SavedModel, the TFLite model, ``vocab.txt``, ``labels.txt``
    and ``tokenizer.json`` of a text model into `out_dir`; returns the paths.
    With `fuse_lstm`, also ``model-fused.tflite``: the same model with the
    LSTM layers that TFLite's fused LSTM op computes as that op (see
    `export_tflite`; its manifest entry lists the layers left as loops and
    why: the classifier masks padding, which the fused op cannot)."""
    vectorizer, classifier = parts(model)
    max_length = int(vectorizer.get_config()["output_sequence_length"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}

    paths["saved_model"] = out / "saved_model"
    model.export(str(paths["saved_model"]), format="tf_saved_model", verbose=False)

    paths["tflite"] = out / "model.tflite"
    # The classifier masks id 0 itself: no `lengths` input.
    report = export_tflite(
        classifier, paths["tflite"], mode="sequence", max_length=max_length, lengths=False
    )

    vocab = ["[PAD]"] + [str(t) for t in vectorizer.get_vocabulary()[1:]]
    paths["vocab"] = out / "vocab.txt"
    paths["vocab"].write_text("\n".join(vocab) + "\n", encoding="utf-8")
    paths["labels"] = out / "labels.txt"
    paths["labels"].write_text("\n".join(label_names) + "\n", encoding="utf-8")
    spec = {
        "vocab_file": "vocab.txt",
        "labels_file": "labels.txt",
        "labels": list(label_names),
        "max_length": max_length,
        "padding_id": 0,
        "oov_id": 1,
        "vocabulary_size": len(vocab),
        "tokenizer": TOKENIZER_STEPS,
        "tflite_input": {"name": "token_ids", "dtype": "int32", "shape": [1, max_length]},
        "tflite_output": {
            "dtype": "float32",
            "shape": [1, len(label_names)],
            "meaning": "class probabilities, in labels.txt order",
        },
        "saved_model_input": {"dtype": "string", "shape": [-1], "meaning": "raw texts"},
    }
    paths["tokenizer"] = out / "tokenizer.json"
    paths["tokenizer"].write_text(
        json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    reports = {"model.tflite": report}
    if fuse_lstm:
        paths["tflite_fused"] = out / "model-fused.tflite"
        reports["model-fused.tflite"] = export_tflite(
            classifier,
            paths["tflite_fused"],
            mode="sequence",
            max_length=max_length,
            lengths=False,
            fuse_lstm=True,
        )
    exports = [
        {
            "file": file,
            "format": "tflite",
            "mode": "sequence",
            "quantize": None,
            "inputs": r["inputs"],
            "outputs": r["outputs"],
            "ops": sorted(set(r["ops"])),
            "max_abs_diff": r["max_abs_diff"],
            "tolerance": r["tolerance"],
            **{k: r[k] for k in ("fused_lstm", "unfused_lstm") if k in r},
        }
        for file, r in reports.items()
    ]
    exports.append(
        {"file": "saved_model", "format": "saved_model", "signatures": {"serve": ["text"]}}
    )
    paths["manifest"] = out / "manifest.json"
    write_manifest(
        out,
        classifier.name,
        exports,
        metrics=metrics,
        model_inputs=[{"name": "text", "shape": [None], "dtype": "string"}],
    )
    return paths
