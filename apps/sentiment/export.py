"""Export of a trained sentiment model for serving and for mobile.

`export` writes, into one folder:

- ``saved_model/``: a TensorFlow SavedModel whose ``serve`` endpoint (and
  ``serving_default`` signature) takes raw strings ``(batch,)`` and returns
  class probabilities ``(batch, classes)``; tokenisation is inside.
- ``model.tflite``: the classifier alone, on token ids: input ``token_ids``
  int32 ``(batch, max_length)``, 0-padded after the text; output float32
  ``(batch, classes)``. It uses TensorFlow Lite built-in ops (the recurrence
  is a ``WHILE`` loop); a streaming export is a separate issue.
- ``vocab.txt``: the vocabulary, one token a line; line i (from 0) is id i.
  Line 0 is ``[PAD]`` (id 0, padding) and line 1 ``[UNK]`` (id 1, every
  token not in the file).
- ``labels.txt``: the label names, line i is class i.
- ``tokenizer.json``: how to turn a text into ids (also in ``README.md``).
"""

import json
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from apps.sentiment.model import parts

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


def export(model, out_dir, label_names):
    """Writes the SavedModel, the TFLite model, ``vocab.txt``, ``labels.txt``
    and ``tokenizer.json`` of a text model into `out_dir`; returns the paths."""
    vectorizer, classifier = parts(model)
    max_length = int(vectorizer.get_config()["output_sequence_length"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}

    paths["saved_model"] = out / "saved_model"
    model.export(str(paths["saved_model"]), format="tf_saved_model", verbose=False)

    paths["tflite"] = out / "model.tflite"
    paths["tflite"].write_bytes(_tflite(classifier, max_length))

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
        "tflite_output": {"dtype": "float32", "shape": [1, len(label_names)],
                          "meaning": "class probabilities, in labels.txt order"},
        "saved_model_input": {"dtype": "string", "shape": [-1], "meaning": "raw texts"},
    }
    paths["tokenizer"] = out / "tokenizer.json"
    paths["tokenizer"].write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n",
                                  encoding="utf-8")
    return paths


def _tflite(classifier, max_length):
    """The classifier on token ids ``(1, max_length)`` as TFLite bytes
    (through a SavedModel, so that the weights are frozen to constants)."""
    ids_spec = tf.TensorSpec([1, max_length], tf.int32, name="token_ids")
    archive = keras.export.ExportArchive()
    archive.track(classifier)
    archive.add_endpoint("serve", lambda ids: classifier(ids, training=False),
                         input_signature=[ids_spec])
    with tempfile.TemporaryDirectory() as tmp:
        archive.write_out(tmp, verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(tmp).convert()
