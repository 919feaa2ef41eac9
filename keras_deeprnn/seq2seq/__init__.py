"""Sequence to sequence: attention encoder-decoders of the library's cells.

- Attention layers with source masking: `BahdanauAttention` (additive) and
  `LuongAttention` ("dot", "general", "concat"), on Keras's
  `AdditiveAttention` / `Attention`.
- Decoders: `AttentionCell`, which wraps any cell for stock
  `keras.layers.RNN` (Bahdanau's order, or Luong's with input feeding),
  and `FastAttentionDecoder` (Luong without input feeding: fused
  whole-sequence recurrence, then the attention of all steps at once).
- `Seq2Seq`: the encoder-decoder (any cell and architecture, bidirectional
  encoder, bridge), trained with `model.fit` and `MaskedCrossEntropy`
  (`MaskedAccuracy`, `MaskedPerplexity` as metrics); `encode`,
  `decode_step`, `generate`.
- Searches over any step function (a Keras model's or a LiteRT
  interpreter's): `greedy_search`, `sample_search`, `beam_search` (with the
  length penalty of Wu et al. 2016, `gnmt_length_penalty`).
- `step_models(model)`: the encoder and the one-step decoder as functional
  Keras models with explicit tensors; `export_step_models` writes them as
  builtin-only TFLite files, and `tflite_generate` decodes with them in
  LiteRT (the same searches).
"""

from keras_deeprnn.seq2seq.attention import BahdanauAttention
from keras_deeprnn.seq2seq.attention import LuongAttention
from keras_deeprnn.seq2seq.attention import MemoryAttention
from keras_deeprnn.seq2seq.decoder import AttentionCell
from keras_deeprnn.seq2seq.decoder import FastAttentionDecoder
from keras_deeprnn.seq2seq.export import export_step_models
from keras_deeprnn.seq2seq.export import step_models
from keras_deeprnn.seq2seq.export import tflite_generate
from keras_deeprnn.seq2seq.losses import MaskedAccuracy
from keras_deeprnn.seq2seq.losses import MaskedCrossEntropy
from keras_deeprnn.seq2seq.losses import MaskedPerplexity
from keras_deeprnn.seq2seq.losses import masked_cross_entropy
from keras_deeprnn.seq2seq.model import Seq2Seq
from keras_deeprnn.seq2seq.model import Seq2SeqState
from keras_deeprnn.seq2seq.search import beam_search
from keras_deeprnn.seq2seq.search import gnmt_length_penalty
from keras_deeprnn.seq2seq.search import greedy_search
from keras_deeprnn.seq2seq.search import sample_search

__all__ = [
    "BahdanauAttention",
    "LuongAttention",
    "MemoryAttention",
    "AttentionCell",
    "FastAttentionDecoder",
    "Seq2Seq",
    "Seq2SeqState",
    "MaskedCrossEntropy",
    "MaskedAccuracy",
    "MaskedPerplexity",
    "masked_cross_entropy",
    "beam_search",
    "greedy_search",
    "sample_search",
    "gnmt_length_penalty",
    "step_models",
    "export_step_models",
    "tflite_generate",
]
