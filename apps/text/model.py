"""The text app's model: `keras_deeprnn.models.language_model`, trained on
mean cross-entropy, scored on whole token streams.

The metric is the mean cross-entropy of the next token in nats,
-(1/N) sum_t log p(x_{t+1} | x_0..x_t), over the N predictions of a split
(padding has weight 0 and is left out); bits per character = nats / ln 2,
perplexity = exp(nats).
"""

import math

import keras

from keras_deeprnn.data.streams import stream_dataset
from keras_deeprnn.training import ResetStates
from keras_deeprnn.training import stateful_clone

# Steps per call when scoring: any length gives the same score (the states
# carry over), long ones cost fewer calls.
SCORE_WINDOW = 1024


def metric():
    """The weighted mean cross-entropy over every scored token, in nats."""
    return keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="nats")


def compile_model(model, lr=2e-3, clipnorm=1.0):
    """Adam on the cross-entropy, the `nats` metric; `lr` a number or a
    schedule (`apps.common.runner.learning_rate`)."""
    model.compile(
        optimizer=keras.optimizers.Adam(lr, clipnorm=clipnorm or None),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[metric()],
    )
    return model


def score(model, ids, streams=1, window=SCORE_WINDOW):
    """Mean cross-entropy (nats per token) of `model` (stateless) over the
    token sequence `ids`, cut into `streams` parallel streams each read from
    zero states to its end. With one stream every token is predicted from
    the whole text before it (the exact score of the split); more streams
    run faster, each starting cold."""
    scorer = stateful_clone(model, batch_size=streams)
    scorer.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[metric()],
    )
    result = scorer.evaluate(
        stream_dataset(ids, streams, window), verbose=0, return_dict=True, callbacks=[ResetStates()]
    )
    return float(result["nats"])


def scores(nats, level):
    """The numbers the field reports: nats and bits per character, or
    nats per word and perplexity."""
    if level == "char":
        return {"nats": nats, "bpc": nats / math.log(2)}
    return {"nats": nats, "perplexity": math.exp(nats)}
