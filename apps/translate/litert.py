"""The LiteRT export of a translation model, and translating with it.

`export` writes, into MODEL/export: the encoder (sequence mode: one invoke
encodes a sentence of up to the model's `max_length` pieces) and the
decoder step (streaming mode: one invoke per token, states in and out, any
number of rows) as builtin-only TFLite files
(`keras_deeprnn.seq2seq.export_step_models`), the vocabulary, and a
manifest with their sha256. `Translator` runs the same searches as the
Keras model (`keras_deeprnn.seq2seq.search`) on the two interpreters.
"""

import json
from pathlib import Path

import numpy as np

from . import translation
from .tokenizer import Tokenizer


def export(model, tokenizer, folder, name, max_length, metrics=None):
    """Writes the export folder; returns its manifest (a dict)."""
    from keras_deeprnn.export import write_manifest
    from keras_deeprnn.seq2seq.export import export_step_models

    folder = Path(folder)
    report = export_step_models(model, folder, max_source_length=max_length)
    for file, blob in tokenizer.files().items():
        (folder / file).write_bytes(blob)
    meta = report["metadata"]
    exports = [
        {
            "file": meta["encoder"],
            "format": "tflite",
            "mode": "sequence",
            "role": "encoder",
            "max_abs_diff": report["encoder_max_abs_diff"],
            "inputs": [{"name": "source_ids", "shape": [1, max_length], "dtype": "int32"}],
        },
        {
            "file": meta["decoder_step"],
            "format": "tflite",
            "mode": "streaming",
            "role": "decoder_step",
            "max_abs_diff": report["decoder_max_abs_diff"],
            "state_sizes": meta["state_sizes"],
        },
    ]
    return write_manifest(folder, name, exports, metrics=metrics)


class Translator:
    """Translates with an export folder alone (its files are checked
    against the manifest first).

    Args:
        folder: The folder `export` wrote.
    """

    def __init__(self, folder):
        from keras_deeprnn.export import check_manifest

        self.folder = Path(folder)
        if not (self.folder / "manifest.json").is_file():
            raise FileNotFoundError(
                f"{self.folder} holds no export (no manifest.json): run "
                "`python -m apps.translate export MODEL` first"
            )
        check_manifest(self.folder)
        self.tokenizer = Tokenizer.load(self.folder)
        self.meta = json.loads((self.folder / "seq2seq.json").read_text())
        self.max_length = self.meta["max_source_length"]

    def generate_ids(self, sources, beam=0, batch_size=64, length_penalty=0.6, max_length=None):
        """As `translation.generate_ids`, on the LiteRT interpreters."""
        from keras_deeprnn.seq2seq.export import tflite_generate

        options = translation.search_options(beam, length_penalty, max_length)
        out = [[] for _ in sources]
        for rows in translation.batches_by_length(sources, batch_size):
            ids = tflite_generate(
                self.folder, translation.padded([sources[i] for i in rows]), **options
            )[0]
            for i, row in zip(rows, np.asarray(ids)[:, 0]):
                out[i] = translation.cut(row, self.meta["eos_id"])
        return out

    def translate(self, texts, beam=0, batch_size=64, length_penalty=0.6):
        sources = translation.source_ids(self.tokenizer, texts, self.max_length)
        ids = self.generate_ids(sources, beam, batch_size, length_penalty)
        return self.tokenizer.decode_target(ids)
