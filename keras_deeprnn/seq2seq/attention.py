"""Attention over a memory (the encoder's outputs), with source masking.

Both layers score every memory step h_j (j = 1..S) against a query q (the
decoder's state), normalise the scores with a softmax over the unmasked
steps and return the context c = sum_j a_j h_j with the weights a:

    a = softmax(score(q, h_1), ..., score(q, h_S))     masked steps: a_j = 0
    c = sum_j a_j h_j

The scores (row vectors, `x W` a matrix product):

- Bahdanau et al. 2015 ("additive"):  score = v . tanh(q W_q + h_j W_k)
- Luong et al. 2015, "dot":           score = q . h_j
- Luong et al. 2015, "general":       score = q . (h_j W_a^T)   (q W_a h_j^T)
- Luong et al. 2015, "concat":        score = v . tanh(q W_q + h_j W_k)

Luong's "concat", v . tanh(W_a [q; h_j]), is Bahdanau's score written with
one matrix W_a = [W_q; W_k]; the two papers differ in where the decoder
reads the context (`keras_deeprnn.seq2seq.AttentionCell`), not in this
score. Neither paper has a bias inside the tanh, nor has this layer.

Keras computes the softmax, the masking and the weighted sum:
`keras.layers.AdditiveAttention(use_scale=True)` scores
sum(scale * tanh(q' + k')) = v . tanh(q' + k') for projected q' = q W_q and
keys k' = h W_k, and `keras.layers.Attention()` scores q . k for
k = h ("dot") or k = h W_a^T ("general"); both set masked scores to
score - 1e9 before the softmax, so a masked step gets exactly zero weight
(exp underflows) and a padded memory gives the context of the unpadded one.
What Keras lacks and these layers add: the projections W_q, W_k, W_a, a
2D query (one decoder step), and the keys computed once per source
(`keys(values)`) for a decoder that attends at every step.
"""

import keras
from keras import ops

from keras_deeprnn.cells.base import check_choice
from keras_deeprnn.cells.base import check_units

LUONG_SCORES = ("dot", "general", "concat")


class MemoryAttention(keras.layers.Layer):
    """Base class: attention of a query over a memory, keys computed once.

    Subclasses create `self.scorer` (a Keras attention layer taking
    `[query, values, keys]`), implement `build_projections(query_dim,
    values_dim)`, `keys(values)` and `project_query(query)`.

    Call arguments:
        query: `(batch, query_dim)` (one decoder step) or
            `(batch, steps, query_dim)` (several at once).
        values: The memory, `(batch, source_steps, values_dim)`.
        mask: Optional boolean `(batch, source_steps)`, False at padding.

    Returns:
        `(context, weights)`: context `(batch, [steps,] values_dim)`, weights
        `(batch, [steps,] source_steps)`, zero at masked steps.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.query_dim = None
        self.values_dim = None

    def build(self, query_shape, values_shape):
        query_shape, values_shape = tuple(query_shape), tuple(values_shape)
        if len(query_shape) not in (2, 3) or query_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': the query must be "
                "(batch, query_dim) or (batch, steps, query_dim) with a known "
                f"query_dim, got shape {query_shape}."
            )
        if len(values_shape) != 3 or values_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': the values (memory) "
                "must be (batch, source_steps, values_dim) with a known "
                f"values_dim, got shape {values_shape}."
            )
        self.query_dim = int(query_shape[-1])
        self.values_dim = int(values_shape[-1])
        key_dim = self.build_projections(self.query_dim, self.values_dim)
        self.scorer.build([(None, None, key_dim), (None, None, self.values_dim)])
        self.built = True

    def build_projections(self, query_dim, values_dim):
        """Create the projections; return the width of the keys."""
        raise NotImplementedError

    def keys(self, values):
        """The keys of the memory `values` (batch, source_steps, key_dim),
        computed once per source and passed to `attend` at every step."""
        raise NotImplementedError

    def project_query(self, query):
        return query

    def attend(self, query, keys, values, mask=None):
        """`(context, weights)` of `query` over precomputed `keys`."""
        one_step = len(query.shape) == 2
        if one_step:
            query = ops.expand_dims(query, 1)
        masks = None
        if mask is not None:
            masks = [None, ops.cast(mask, "bool")]
        context, weights = self.scorer(
            [self.project_query(query), values, keys],
            mask=masks,
            return_attention_scores=True,
        )
        if one_step:
            return context[:, 0], weights[:, 0]
        return context, weights

    def call(self, query, values, mask=None):
        self._check_widths(query, values)
        return self.attend(query, self.keys(values), values, mask)

    def _check_widths(self, query, values):
        for name, tensor, width in (
            ("query", query, self.query_dim),
            ("values", values, self.values_dim),
        ):
            if tensor.shape[-1] is not None and tensor.shape[-1] != width:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}' was built for "
                    f"{name} of width {width}, got shape {tuple(tensor.shape)}."
                )

    def compute_mask(self, inputs, previous_mask=None):
        # `mask` masks the values, not the query: the outputs carry none.
        return None

    def compute_output_shape(self, query_shape, values_shape, mask_shape=None):
        return (
            (*query_shape[:-1], values_shape[-1]),
            (*query_shape[:-1], values_shape[1]),
        )


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class BahdanauAttention(MemoryAttention):
    """Additive attention of Bahdanau, Cho & Bengio (2015).

    "Neural Machine Translation by Jointly Learning to Align and Translate",
    eq. (6) and appendix A.1.2: with query q (the decoder state s_{i-1}) and
    memory steps h_j,

        e_j = v . tanh(q W_q + h_j W_k)        W_q (query_dim, units),
                                               W_k (values_dim, units)
        a = softmax(e) over the unmasked j,    c = sum_j a_j h_j

    computed by `keras.layers.AdditiveAttention(use_scale=True)` (whose
    `scale` is v) on q W_q and the keys h W_k. The keys do not depend on
    the query: `keys(values)` computes them once per source sentence.

    Args:
        units: Width of the hidden layer of the score (n' in the paper).
        kernel_initializer: Initializer of W_q and W_k.

    Call arguments:
        query: `(batch, query_dim)` or `(batch, steps, query_dim)`.
        values: The memory `(batch, source_steps, values_dim)`.
        mask: Optional boolean `(batch, source_steps)`, False at padding.

    Returns:
        `(context, weights)`: `(batch, [steps,] values_dim)` and
        `(batch, [steps,] source_steps)`.

    Example:

    >>> attention = BahdanauAttention(8)
    >>> memory = np.ones((2, 5, 6), "float32")
    >>> mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    >>> context, weights = attention(np.ones((2, 4), "float32"), memory, mask=mask)
    >>> tuple(context.shape), [f"{w:.3f}" for w in np.asarray(weights)[0]]
    ((2, 6), ['0.333', '0.333', '0.333', '0.000', '0.000'])
    """

    def __init__(self, units, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = check_units(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.query_dense = keras.layers.Dense(
            self.units, use_bias=False, kernel_initializer=self.kernel_initializer, name="query"
        )
        self.key_dense = keras.layers.Dense(
            self.units, use_bias=False, kernel_initializer=self.kernel_initializer, name="key"
        )
        self.scorer = keras.layers.AdditiveAttention(use_scale=True, name="score")

    def build_projections(self, query_dim, values_dim):
        self.query_dense.build((None, query_dim))
        self.key_dense.build((None, None, values_dim))
        return self.units

    def keys(self, values):
        return self.key_dense(values)

    def project_query(self, query):
        return self.query_dense(query)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class LuongAttention(MemoryAttention):
    """Multiplicative ("dot", "general") and "concat" attention of Luong,
    Pham & Manning (2015).

    "Effective Approaches to Attention-based Neural Machine Translation",
    eq. (8), global attention: with query q (the decoder's h_t) and memory
    steps h_j,

        dot:     e_j = q . h_j                   (query_dim = values_dim)
        general: e_j = q W_a h_j^T               W_a (query_dim, values_dim)
        concat:  e_j = v . tanh(q W_q + h_j W_k) W_a = [W_q; W_k], width units
        a = softmax(e) over the unmasked j,      c = sum_j a_j h_j

    "dot" and "general" are `keras.layers.Attention()` (score q . k) on the
    keys k = h ("dot") or k = h W_a^T ("general"); "concat" is
    `keras.layers.AdditiveAttention(use_scale=True)`, the same computation
    as `BahdanauAttention`. The keys are computed once per source
    (`keys(values)`).

    Args:
        score: "dot", "general" or "concat".
        units: Width of the hidden layer of "concat" (default: query_dim);
            the other scores take None.
        kernel_initializer: Initializer of W_a (W_q, W_k).

    Call arguments:
        query: `(batch, query_dim)` or `(batch, steps, query_dim)`.
        values: The memory `(batch, source_steps, values_dim)`.
        mask: Optional boolean `(batch, source_steps)`, False at padding.

    Returns:
        `(context, weights)`: `(batch, [steps,] values_dim)` and
        `(batch, [steps,] source_steps)`.

    Example:

    >>> attention = LuongAttention("dot")
    >>> memory = np.eye(3, dtype="float32")[None]       # h_j = e_j
    >>> context, weights = attention(np.array([[0.0, 0.0, 9.0]], "float32"), memory)
    >>> [f"{w:.3f}" for w in np.asarray(weights)[0]]
    ['0.000', '0.000', '1.000']
    """

    def __init__(self, score="general", units=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.score = check_choice("score", score, LUONG_SCORES)
        if units is not None:
            if score != "concat":
                raise ValueError(
                    f"Argument `units` sets the hidden width of the 'concat' "
                    f"score; score={score!r} has none (got units={units!r})."
                )
            units = check_units(units)
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.query_dense = None
        self.key_dense = None
        if score == "concat":
            self.scorer = keras.layers.AdditiveAttention(use_scale=True, name="score")
        else:
            self.scorer = keras.layers.Attention(name="score")

    def build_projections(self, query_dim, values_dim):
        init = self.kernel_initializer
        if self.score == "dot":
            if query_dim != values_dim:
                raise ValueError(
                    f"LuongAttention '{self.name}' with score='dot' needs the "
                    f"query and the values to have one width, got query_dim="
                    f"{query_dim} and values_dim={values_dim}; use "
                    "score='general' to learn a map between them."
                )
            return values_dim
        if self.score == "general":
            self.key_dense = keras.layers.Dense(
                query_dim, use_bias=False, kernel_initializer=init, name="key"
            )
            self.key_dense.build((None, None, values_dim))
            return query_dim
        units = self.units or query_dim
        self.query_dense = keras.layers.Dense(
            units, use_bias=False, kernel_initializer=init, name="query"
        )
        self.key_dense = keras.layers.Dense(
            units, use_bias=False, kernel_initializer=init, name="key"
        )
        self.query_dense.build((None, query_dim))
        self.key_dense.build((None, None, values_dim))
        return units

    def keys(self, values):
        return values if self.key_dense is None else self.key_dense(values)

    def project_query(self, query):
        return query if self.query_dense is None else self.query_dense(query)

    def get_config(self):
        return {
            **super().get_config(),
            "score": self.score,
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
