"""Language models: token ids in, next-token logits out, any deep RNN.

`language_model(vocabulary_size, units=..., kind=..., cell=...)` builds

    ids (batch, T) int32
    -> embedding E (TiedEmbedding, dim = embedding_dim)
    -> variational dropout
    -> the recurrent network of `kind` (`deep_rnn`), variational dropout
       between stacked layers and after the last
    -> logits (batch, T, V): a Dense map to the vocabulary, or with
       `tie_embeddings` h E^T + b (Press & Wolf 2017) after a linear
       projection to embedding_dim where the state is wider; "dot"/"dots"
       put their deep output first (to V, or to embedding_dim when tied).

Variational dropout (Gal & Ghahramani 2016) drops the same features at
every step of a sequence (`keras.layers.SpatialDropout1D`: one mask per
sequence and feature, which under stateful truncated BPTT is one mask per
window); `recurrent_dropout` does the same to the recurrent state inside
the cells. "srnn" is `depth` recurrent layers one after another, the
function of `deep_rnn("srnn")`'s `StackedCells` without skip connections,
built as separate `keras_deeprnn.layers.RNN` layers so that each runs its
cell's whole-sequence kernel, with dropout between them.

With `stateful=True` (and a fixed `batch_size`) the recurrent layers carry
their states from one call to the next, for truncated BPTT over streams
(`keras_deeprnn.data.streams`, `keras_deeprnn.training.stateful_clone`).
"""

import keras

from keras_deeprnn.layers._units import check_bool
from keras_deeprnn.layers._units import check_int
from keras_deeprnn.layers.tied_embedding import TiedEmbedding
from keras_deeprnn.models.architecture import KINDS
from keras_deeprnn.models.builder import deep_rnn


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"Argument `{name}` must be a rate in [0, 1), got {value!r}.")
    return float(value)


def language_model(
    vocabulary_size,
    *,
    units,
    kind="rnn",
    cell="lstm",
    depth=None,
    unit_type="tanh",
    embedding_dim=None,
    tie_embeddings=False,
    dropout=0.0,
    recurrent_dropout=0.0,
    batch_size=None,
    stateful=False,
    cell_kwargs=None,
    name="language_model",
):
    """A next-token model over `vocabulary_size` tokens (see the module).

    Args:
        vocabulary_size: V, the number of token ids.
        units: Units of the recurrent state (of each layer for "srnn").
        kind: "rnn", "dt", "dts", "dot", "dots" or "srnn" (`deep_rnn`).
        cell: A cell name of `keras_deeprnn.cells.CELL_NAMES` ("lstm",
            "gru", "lstm-cifg", ...).
        depth: Transition layers (dt kinds) or stacked layers (srnn);
            default 2 (1 for "rnn").
        unit_type: Intermediate units of the deep transition and output.
        embedding_dim: The embedding size (default `units`).
        tie_embeddings: Share the embedding with the output layer.
        dropout: Variational dropout on the embeddings, between stacked
            layers and on the last recurrent outputs.
        recurrent_dropout: Variational dropout on the recurrent state.
        batch_size: A fixed batch size (needed with `stateful`).
        stateful: Carry the recurrent states from call to call.
        cell_kwargs: More arguments of every cell (e.g. `forget_bias`).
        name: The model's name.

    Returns:
        A functional `keras.Model` from `ids` (batch, T) int32 to logits
        (batch, T, V).

    Example:

    >>> model = language_model(65, units=32, kind="srnn", depth=2, tie_embeddings=True,
    ...                        embedding_dim=16, dropout=0.1)
    >>> tuple(model(np.zeros((2, 7), "int32")).shape)
    (2, 7, 65)
    """
    vocabulary_size = check_int("vocabulary_size", vocabulary_size, 1)
    if kind not in KINDS:
        raise ValueError(f"Unknown kind {kind!r}; choose one of {', '.join(KINDS)}.")
    embedding_dim = check_int("embedding_dim", units if embedding_dim is None else embedding_dim, 1)
    tie_embeddings = check_bool("tie_embeddings", tie_embeddings)
    dropout = _check_rate("dropout", dropout)
    recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
    if stateful and batch_size is None:
        raise ValueError("Argument `stateful=True` needs a fixed `batch_size`.")
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)
    cell_kwargs = dict(cell_kwargs or {})
    if recurrent_dropout:
        cell_kwargs["recurrent_dropout"] = recurrent_dropout
    stacked = kind == "srnn"
    layers = (2 if depth is None else depth) if stacked else 1
    deep_output = kind in ("dot", "dots")
    out_dim = embedding_dim if tie_embeddings else vocabulary_size

    ids = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="ids")
    embedding = TiedEmbedding(
        vocabulary_size, embedding_dim, output_bias=tie_embeddings, name="embedding"
    )
    x = embedding(ids)
    for layer in range(layers):
        if dropout:
            x = keras.layers.SpatialDropout1D(dropout, name=f"dropout_{layer}")(x)
        rnn, *output = deep_rnn(
            "rnn" if stacked else kind,
            units=units,
            cell=cell,
            depth=None if stacked else depth,
            unit_type=unit_type,
            output_units=out_dim if deep_output else None,
            cell_kwargs=cell_kwargs,
            stateful=stateful,
            name=f"layer_{layer}",
        )
        x = rnn(x)
    if dropout:
        x = keras.layers.SpatialDropout1D(dropout, name=f"dropout_{layers}")(x)
    if deep_output:
        x = output[0](x)
    if not tie_embeddings:
        if not deep_output:
            x = keras.layers.Dense(vocabulary_size, name="logits")(x)
    else:
        if not deep_output and units != embedding_dim:
            x = keras.layers.Dense(embedding_dim, name="projection")(x)
        x = embedding(x, reverse=True)
    return keras.Model(ids, x, name=name)
