"""Seq2Seq trained with model.fit and teacher forcing on a copy task."""

import keras
import numpy as np

from keras_deeprnn.seq2seq import MaskedAccuracy
from keras_deeprnn.seq2seq import MaskedCrossEntropy
from keras_deeprnn.seq2seq import Seq2Seq


def test_fit_learns_to_copy():
    # Copy a 3-token source: the loss (label-smoothed, padding masked)
    # falls, and greedy decoding copies.
    rng = np.random.default_rng(0)
    src = rng.integers(3, 8, (64, 3)).astype("int32")
    src[::4, 2] = 0  # some sources are shorter (padded)
    length = (src != 0).sum(1)
    tgt_out = np.zeros((64, 4), "int32")
    for row, n in enumerate(length):
        tgt_out[row, :n] = src[row, :n]
        tgt_out[row, n] = 2
    tgt_in = np.concatenate([np.ones((64, 1), "int32"), tgt_out[:, :-1]], 1)
    tgt_in[tgt_in == 2] = 0
    model = Seq2Seq(8, 8, embedding_dim=8, units=16, decoder="fast", attention="luong-dot",
                    dropout=0.0, max_length=5)  # fmt: skip
    model.compile(keras.optimizers.Adam(0.03), loss=MaskedCrossEntropy(label_smoothing=0.05),
                  metrics=[MaskedAccuracy()])  # fmt: skip
    history = model.fit((src, tgt_in), tgt_out, batch_size=16, epochs=15, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    tokens, _ = model.generate(src[:16])
    width = min(tokens.shape[-1], 4)
    assert np.mean(tokens[:, 0, :width] == tgt_out[:16, :width]) > 0.8
