"""A `Seq2Seq` as two step models, their TFLite files, and LiteRT decoding.

Generation needs two functions: the encoder (once per sentence) and one
decoder step (once per token, carrying the states). `step_models` builds
them as functional Keras models with fixed, explicit tensors, sharing the
model's layers:

- encoder: `source_ids` int32 (batch, S) ->
  `[memory (batch, S, D), keys (batch, S, K), mask (batch, S), *states]`;
- decoder step: `[token int32 (N,), *states (N, size), memory, keys,
  mask]` -> `[logits (N, V), *new states, attention (N, S)]`.

`export_step_models` writes both as TFLite files of builtin ops (the
encoder through `keras_deeprnn.export.export_tflite`, sequence mode, at a
fixed source length S; the decoder step as it is, with a free batch of N
rows = sentences x beams) and checks each against Keras in LiteRT.
`tflite_generate` runs the same searches as `Seq2Seq.generate`
(`keras_deeprnn.seq2seq.search`) on the two interpreters.
"""

import json
import os
import tempfile
from pathlib import Path

import keras
import numpy as np

from keras_deeprnn.seq2seq import search
from keras_deeprnn.seq2seq.model import METHODS
from keras_deeprnn.seq2seq.model import Seq2Seq
from keras_deeprnn.seq2seq.model import Seq2SeqState

ENCODER_FILE = "encoder.tflite"
DECODER_FILE = "decoder_step.tflite"
METADATA_FILE = "seq2seq.json"


def _sizes(model):
    """(state sizes, key width) of `model`, from one tiny encoding."""
    state = model.encode(np.full((1, 1), (model.pad_id + 1) % model.source_vocab_size, "int32"))
    return [int(s.shape[-1]) for s in state.states], int(state.keys.shape[-1])


def step_models(model):
    """The encoder and the one-step decoder of `model` as functional models.

    Args:
        model: A `Seq2Seq` (built or not).

    Returns:
        `(encoder, decoder_step)`:

        - encoder: input `source_ids` int32 (batch, S); outputs `[memory,
          keys, mask, state_0, ..., state_{n-1}]` (mask float, 1 at real
          tokens);
        - decoder_step: inputs `[token (N,) int32, state_0 .. state_{n-1},
          memory, keys, mask]`; outputs `[logits (N, V), state_0 ..
          state_{n-1}, attention (N, S)]`.

        Both share `model`'s layers and weights, and compute what
        `model.encode` and `model.decode_step` compute (inference mode).

    Example:

    >>> model = Seq2Seq(12, 12, embedding_dim=4, units=4)
    >>> encoder, decoder_step = step_models(model)
    >>> [tuple(t.shape) for t in encoder.outputs][:3]
    [(None, None, 4), (None, None, 4), (None, None)]
    """
    if not isinstance(model, Seq2Seq):
        raise ValueError(f"step_models takes a Seq2Seq, got {type(model).__name__}.")
    if not model.built:
        model.build()
    sizes, key_dim = _sizes(model)
    source = keras.Input((None,), dtype="int32", name="source_ids")
    state = model.encode(source)
    encoder = keras.Model(
        source,
        [state.memory, state.keys, state.mask, *state.states],
        name=f"{model.name}_encoder",
    )
    token = keras.Input((), dtype="int32", name="token")
    states = [keras.Input((size,), name=f"state_{k}") for k, size in enumerate(sizes)]
    memory = keras.Input((None, model.memory_size), name="memory")
    keys = keras.Input((None, key_dim), name="keys")
    mask = keras.Input((None,), name="mask")
    logits, new_state, weights = model.decode_step(token, Seq2SeqState(memory, keys, mask, states))
    decoder = keras.Model(
        [token, *states, memory, keys, mask],
        [logits, *new_state.states, weights],
        name=f"{model.name}_decoder_step",
    )
    return encoder, decoder


def _decoder_function(decoder, rows, source_length):
    import tensorflow as tf

    specs = []
    for tensor in decoder.inputs:
        shape = (rows,) + tuple(tensor.shape[1:])
        if len(shape) > 1 and shape[1] is None:
            shape = (rows, source_length) + shape[2:]
        specs.append(tf.TensorSpec(shape, tensor.dtype, name=tensor.name))
    count = len(decoder.outputs) - 2

    def serve(*args):
        outputs = decoder(list(args), training=False)
        result = {"logits": outputs[0], "attention": outputs[-1]}
        result.update({f"state_{k}": outputs[1 + k] for k in range(count)})
        return result

    return tf.function(serve, input_signature=specs, autograph=False), specs


def _check_decoder(decoder, path, specs, tolerance):
    from keras_deeprnn.export import ExportError
    from keras_deeprnn.export import load_tflite

    rng = np.random.default_rng(0)
    rows = 3
    feeds = {}
    for spec in specs:
        shape = [rows if d is None else d for d in spec.shape]
        if spec.dtype.is_integer:
            feeds[spec.name] = rng.integers(1, 4, shape).astype(np.int32)
        elif spec.name == "mask":
            feeds[spec.name] = (rng.random(shape) < 0.8).astype(np.float32)
            feeds[spec.name][:, 0] = 1.0
        else:
            feeds[spec.name] = rng.normal(size=shape).astype(np.float32)
    expected = decoder([feeds[s.name] for s in specs], training=False)
    runner = load_tflite(path).get_signature_runner()
    got = runner(**feeds)
    names = ["logits", *[f"state_{k}" for k in range(len(expected) - 2)], "attention"]
    worst = max(
        float(np.max(np.abs(np.asarray(want) - got[name]))) for name, want in zip(names, expected)
    )
    scale = max(1.0, max(float(np.max(np.abs(np.asarray(w)))) for w in expected))
    if worst > tolerance * scale:
        raise ExportError(
            f"{path} differs from the Keras decoder step by up to {worst:.3g}, more "
            f"than {tolerance:g} x {scale:.3g}."
        )
    return worst


def export_step_models(model, folder, max_source_length, batch_size=1, tolerance=1e-4):
    """Writes the encoder and the decoder step of `model` as TFLite files.

    Files in `folder`: `encoder.tflite` (inputs `source_ids` int32
    (batch_size, max_source_length), padded with `pad_id`; outputs
    `output_0` .. in the order of `step_models`: memory, keys, mask, the
    decoder's initial states), `decoder_step.tflite` (signature inputs
    `token`, `state_<k>`, `memory`, `keys`, `mask`, any number of rows;
    outputs `logits`, `state_<k>`, `attention`) and `seq2seq.json` (ids,
    sizes, file names). Both files hold builtin ops only and are checked
    against Keras in LiteRT.

    Args:
        model: A `Seq2Seq`.
        folder: Where to write.
        max_source_length: S, the source length of the encoder file
            (shorter sources are padded; longer ones refused).
        batch_size: Sentences per encoder invoke.
        tolerance: Largest accepted |TFLite - Keras| relative to max(1,
            max |Keras output|).

    Returns:
        A dict: the paths, the largest differences, and the metadata.
    """
    from keras_deeprnn.export import export_tflite
    from keras_deeprnn.export.tflite import _convert
    from keras_deeprnn.layers import _native

    max_source_length = int(max_source_length)
    if max_source_length < 1:
        raise ValueError(f"max_source_length must be >= 1, got {max_source_length}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder, decoder = step_models(model)
    report = export_tflite(
        encoder,
        folder / ENCODER_FILE,
        mode="sequence",
        max_length=max_source_length,
        batch_size=batch_size,
        lengths=False,
        tolerance=tolerance,
    )
    with _native.off():
        function, specs = _decoder_function(decoder, None, max_source_length)
        flatbuffer = _convert(function, decoder, None, None)
    path = folder / DECODER_FILE
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as handle:
        handle.write(flatbuffer)
    try:
        decoder_diff = _check_decoder(decoder, handle.name, specs, tolerance)
    except Exception:
        os.unlink(handle.name)
        raise
    os.replace(handle.name, path)
    sizes, key_dim = _sizes(model)
    metadata = {
        "pad_id": model.pad_id,
        "bos_id": model.bos_id,
        "eos_id": model.eos_id,
        "max_length": model.max_length,
        "max_source_length": max_source_length,
        "batch_size": batch_size,
        "source_vocab_size": model.source_vocab_size,
        "target_vocab_size": model.target_vocab_size,
        "memory_size": model.memory_size,
        "key_size": key_dim,
        "state_sizes": sizes,
        "encoder": ENCODER_FILE,
        "decoder_step": DECODER_FILE,
    }
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return {
        "encoder": str(folder / ENCODER_FILE),
        "decoder_step": str(path),
        "encoder_max_abs_diff": report["max_abs_diff"],
        "decoder_max_abs_diff": decoder_diff,
        "metadata": metadata,
    }


def tflite_generate(
    folder,
    source_ids,
    method="greedy",
    beam_width=5,
    length_penalty=0.6,
    temperature=1.0,
    max_length=None,
    n_best=1,
    return_attention=False,
    seed=None,
):
    """`Seq2Seq.generate` on the LiteRT files of `export_step_models`.

    Args:
        folder: The folder `export_step_models` wrote.
        source_ids: `(batch, S)` ids, S <= the files' max_source_length.
        method, beam_width, length_penalty, temperature, max_length,
        n_best, return_attention, seed: As in `Seq2Seq.generate`.

    Returns:
        As `Seq2Seq.generate`; the attention covers the padded source
        (max_source_length steps, zero on the padding).
    """
    from keras_deeprnn.export import ExportError
    from keras_deeprnn.export import load_tflite

    if method not in METHODS:
        raise ValueError(f"Unknown method={method!r}; choose one of {METHODS}.")
    folder = Path(folder)
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ExportError(f"{folder} holds no readable {METADATA_FILE}: {error}") from error
    source_ids = np.asarray(source_ids)
    if source_ids.ndim != 2 or not np.issubdtype(source_ids.dtype, np.integer):
        raise ValueError(f"source_ids must be integer ids (batch, S), got {source_ids.shape}.")
    length = metadata["max_source_length"]
    if source_ids.shape[1] > length:
        raise ValueError(
            f"Sources of {source_ids.shape[1]} tokens are longer than the "
            f"encoder file's max_source_length={length}."
        )
    pad = metadata["pad_id"]
    padded = np.full((len(source_ids), length), pad, np.int32)
    padded[:, : source_ids.shape[1]] = source_ids
    encoder = load_tflite(folder / metadata["encoder"]).get_signature_runner()
    decoder = load_tflite(folder / metadata["decoder_step"]).get_signature_runner()
    chunk = metadata["batch_size"]
    count = len(metadata["state_sizes"])
    outputs = []
    for start in range(0, len(padded), chunk):
        rows = padded[start : start + chunk]
        filled = np.concatenate([rows, np.full((chunk - len(rows), length), pad, np.int32)])
        filled[len(rows) :, 0] = (pad + 1) % metadata["source_vocab_size"]
        result = encoder(source_ids=filled)
        outputs.append([result[f"output_{i}"][: len(rows)] for i in range(3 + count)])
    memory, keys, mask, *states = [np.concatenate(parts) for parts in zip(*outputs)]

    def step_fn(tokens, states, memory, keys, mask):
        feed = {f"state_{k}": s for k, s in enumerate(states)}
        result = decoder(token=tokens, memory=memory, keys=keys, mask=mask, **feed)
        new_states = [result[f"state_{k}"] for k in range(count)]
        return result["logits"], new_states, result["attention"]

    common = dict(
        step_fn=step_fn,
        initial_state=states,
        batch_size=len(source_ids),
        bos_id=metadata["bos_id"],
        eos_id=metadata["eos_id"],
        max_length=metadata["max_length"] if max_length is None else max_length,
        context=[memory, keys, mask],
        pad_id=pad,
        return_attention=return_attention,
    )
    if method == "greedy":
        return search.greedy_search(**common)
    if method == "sample":
        return search.sample_search(
            **common, temperature=temperature, num_samples=n_best, seed=seed
        )
    return search.beam_search(
        **common, beam_width=beam_width, length_penalty=length_penalty, n_best=n_best
    )
