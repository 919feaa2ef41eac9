"""A conditional NADE output layer: the joint distribution of a binary frame."""

import keras
from keras import initializers
from keras import ops
from keras import regularizers

from keras_deeprnn.cells.base import check_units
from keras_deeprnn.metrics import frame_nll


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class NADE(keras.layers.Layer):
    """Conditional NADE over binary vectors (the output of an RNN-NADE).

    A recurrent network that predicts each key of a piano-roll frame as an
    independent Bernoulli cannot say that the notes of a chord go together.
    The RNN-NADE of Boulanger-Lewandowski, Bengio & Vincent (ICML 2012)
    replaces that output with a NADE (Larochelle & Murray 2011) whose biases
    are affine maps of the recurrent state, so that each frame v_t in
    {0, 1}^n has a joint distribution given the past. With c_t the
    conditioning vector (the RNN's output after reading frame t - 1), H =
    `units` hidden units and the keys in their natural order (i = 1..n,
    lowest first; row vectors):

        b_v(t) = b_v + c_t U_v                             (n,)
        b_h(t) = b_h + c_t U_h                             (H,)
        a_i    = b_h(t) + sum_{j < i} v_tj W_j             (H,)
        z_i    = b_v(t)_i + sigmoid(a_i) V_i               (the logit of key i)
        p(v_ti = 1 | v_t,<i, c_t) = sigmoid(z_i)
        log p(v_t | c_t) = sum_i [v_ti log sigmoid(z_i)
                                  + (1 - v_ti) log sigmoid(-z_i)]

    with W (n, H) (row j: what key j adds to the hidden units of the keys
    after it) and V (n, H) (row i: how key i reads them) shared by all
    keys. The a_i of all keys come from one cumulative sum (over the keys
    that are on: a_i only changes after them), so the exact log-likelihood
    of every frame of a batch of sequences is computed at once, in matrix
    products, with no loop over keys.

    Given the frame, the layer returns the n conditional logits z_i,
    computed with the frame's own earlier keys (teacher forcing). Their
    Bernoulli cross-entropy, summed over the keys, is exactly
    -log p(v_t | c_t), so the loss of the independent-Bernoulli output,
    `keras_deeprnn.metrics.FrameNLL` (with `FrameNLLMetric`), is the
    joint frame NLL here, in the same units: pass the frames both as the
    layer's second input and as the targets. `log_prob` gives it directly;
    `sample` draws new frames key by key (ancestral sampling: z_i needs
    the keys drawn before it).

    Inputs: `[conditioning, frames]`, shapes `(..., features)` and
    `(..., keys)` with the same leading axes (e.g. `(batch, time, ...)`).
    Output: the conditional logits, the shape of `frames`. A mask on the
    conditioning passes through.

    Weights: `visible_kernel` W and `hidden_kernel` V (keys, units),
    `visible_bias` b_v (keys,), `hidden_bias` b_h (units,), and the
    conditioning maps `conditioning_visible_kernel` U_v (features, keys) and
    `conditioning_hidden_kernel` U_h (features, units).

    Args:
        units: Positive integer, the NADE's hidden units H.
        kernel_initializer: Initializer of W, V, U_v and U_h (default
            "glorot_uniform").
        bias_initializer: Initializer of b_v and b_h (default "zeros").
        kernel_regularizer: Optional regularizer of W, V, U_v and U_h.

    Call arguments:
        inputs: `[conditioning, frames]` as above; a key of the frames is
            on where it is above 0.5.

    Example:

    >>> frames = keras.Input((None, 8))
    >>> targets = keras.Input((None, 8))
    >>> state = keras.layers.GRU(16, return_sequences=True)(frames)
    >>> logits = NADE(12)([state, targets])
    >>> model = keras.Model([frames, targets], logits)
    >>> model.compile("adam", FrameNLL(), weighted_metrics=[FrameNLLMetric()])
    >>> x = (np.random.default_rng(0).random((2, 5, 8)) < 0.3).astype("float32")
    >>> tuple(model([x[:, :-1], x[:, 1:]]).shape)
    (2, 4, 8)
    >>> nade = model.layers[-1]
    >>> tuple(nade.sample(np.zeros((3, 16), "float32"), seed=0).shape)
    (3, 8)
    """

    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_units(units)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.supports_masking = True
        # `call` sizes a tensor by the most keys on in the batch: not XLA.
        self.supports_jit = False

    def build(self, input_shape):
        shapes = _two_shapes(input_shape, self.name)
        features, keys = shapes[0][-1], shapes[1][-1]
        if features is None or keys is None:
            raise ValueError(
                f"NADE '{self.name}' needs a known feature dimension of the conditioning "
                f"and a known number of keys, got shapes {shapes[0]} and {shapes[1]}."
            )
        if len(shapes[0]) != len(shapes[1]):
            raise ValueError(
                f"NADE '{self.name}': the conditioning {shapes[0]} and the frames "
                f"{shapes[1]} must have the same number of axes."
            )
        self.keys = keys
        self.input_spec = [
            keras.layers.InputSpec(min_ndim=2, axes={-1: features}),
            keras.layers.InputSpec(min_ndim=2, axes={-1: keys}),
        ]

        def matrix(name, shape):
            return self.add_weight(
                name=name,
                shape=shape,
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
            )

        def vector(name, size):
            return self.add_weight(name=name, shape=(size,), initializer=self.bias_initializer)

        self.visible_kernel = matrix("visible_kernel", (keys, self.units))
        self.hidden_kernel = matrix("hidden_kernel", (keys, self.units))
        self.visible_bias = vector("visible_bias", keys)
        self.hidden_bias = vector("hidden_bias", self.units)
        self.conditioning_visible_kernel = matrix("conditioning_visible_kernel", (features, keys))
        self.conditioning_hidden_kernel = matrix(
            "conditioning_hidden_kernel", (features, self.units)
        )
        self.built = True

    def _biases(self, conditioning):
        b_v = self.visible_bias + ops.matmul(conditioning, self.conditioning_visible_kernel)
        b_h = self.hidden_bias + ops.matmul(conditioning, self.conditioning_hidden_kernel)
        return b_v, b_h

    def call(self, inputs):
        conditioning, frames = inputs
        frames = ops.cast(frames > 0.5, conditioning.dtype)
        b_v, b_h = self._biases(conditioning)
        # a_i changes only after a key that is on: with k keys on, the
        # hidden units take k + 1 values a_(0..k) (cumulative sums of the
        # W rows of the keys on, lowest first), and key i reads a_(m_i),
        # m_i = the number of keys on below it. One sigmoid per value and
        # one matrix product give every logit: O((k + 1) n H) in a matmul
        # instead of n H sigmoids, which is many times faster for piano
        # rolls (k <= 4 in JSB Chorales). k is the most keys on in any
        # frame of the batch.
        below = ops.cast(ops.cumsum(frames, axis=-1) - frames, "int32")
        most = ops.cast(ops.max(ops.sum(frames, axis=-1)), "int32")
        rank = frames * ops.arange(self.keys, 0, -1, dtype=frames.dtype)
        top, on_keys = ops.top_k(rank, most)  # the keys on, lowest first
        rows = ops.take(self.visible_kernel, on_keys, axis=0)
        rows = rows * ops.cast(top > 0, rows.dtype)[..., None]  # frames with fewer keys on
        hidden = ops.cumsum(rows, axis=-2)
        hidden = ops.concatenate([ops.zeros_like(b_h[..., None, :]), hidden], axis=-2)
        hidden = ops.sigmoid(b_h[..., None, :] + hidden)  # (..., k + 1, units)
        every = ops.matmul(hidden, ops.transpose(self.hidden_kernel))  # (..., k + 1, keys)
        return b_v + ops.take_along_axis(every, below[..., None, :], axis=-2)[..., 0, :]

    def compute_output_shape(self, input_shape):
        return tuple(_two_shapes(input_shape, self.name)[1])

    def compute_mask(self, inputs, mask=None):
        return mask[0] if isinstance(mask, (list, tuple)) else mask

    def log_prob(self, conditioning, frames):
        """log p(frames | conditioning) in nats, one value per frame.

        Args:
            conditioning: `(..., features)`.
            frames: 0/1 frames `(..., keys)`, the same leading axes.

        Returns:
            A tensor of shape `(...)`.
        """
        return -frame_nll(frames, self([conditioning, frames]))

    def sample(self, conditioning, uniform=None, temperature=1.0, seed=None):
        """Draws one frame per conditioning vector, key by key.

        Key i is on when u_i < sigmoid(z_i / temperature), z_i computed
        from the keys drawn before it; u are uniform numbers in [0, 1).
        With u_i = 0.5 for every key the draw is greedy (each key takes
        its more likely value given the keys before it).

        Args:
            conditioning: `(batch, features)`.
            uniform: Optional `(batch, keys)` uniform numbers; default
                drawn with `keras.random.uniform(seed=seed)`.
            temperature: Positive number; below 1 sharpens every
                conditional, above 1 flattens it.
            seed: Seed of the uniform numbers when `uniform` is None (an
                integer or a `keras.random.SeedGenerator`).

        Returns:
            `(batch, keys)` frames of 0.0 and 1.0.
        """
        if not temperature > 0:
            raise ValueError(f"Argument `temperature` must be > 0, got {temperature}.")
        conditioning = ops.convert_to_tensor(conditioning, self.compute_dtype)
        if not self.built:
            raise ValueError(f"NADE '{self.name}' must be built (called once) before sampling.")
        if len(conditioning.shape) != 2:
            raise ValueError(
                f"NADE.sample takes conditioning of shape (batch, features), got "
                f"{tuple(conditioning.shape)}."
            )
        batch = ops.shape(conditioning)[0]
        if uniform is None:
            uniform = keras.random.uniform((batch, self.keys), seed=seed, dtype=self.compute_dtype)
        uniform = ops.convert_to_tensor(uniform, self.compute_dtype)
        if len(uniform.shape) != 2 or uniform.shape[-1] not in (None, self.keys):
            raise ValueError(
                f"Argument `uniform` must have shape (batch, {self.keys}), got "
                f"{tuple(uniform.shape)}."
            )
        b_v, a = self._biases(conditioning)
        keys = ops.eye(self.keys, dtype=a.dtype)

        def draw(i, carry):
            a, frame = carry
            z = ops.take(b_v, i, axis=1) + ops.sum(
                ops.sigmoid(a) * ops.take(self.hidden_kernel, i, axis=0), axis=-1
            )
            on = ops.cast(ops.take(uniform, i, axis=1) < ops.sigmoid(z / temperature), a.dtype)
            a = a + on[:, None] * ops.take(self.visible_kernel, i, axis=0)
            return a, frame + on[:, None] * ops.take(keys, i, axis=0)

        return ops.fori_loop(0, self.keys, draw, (a, ops.zeros_like(b_v)))[1]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
        }


def _two_shapes(input_shape, name):
    if (
        not isinstance(input_shape, (list, tuple))
        or len(input_shape) != 2
        or not all(isinstance(s, (list, tuple)) for s in input_shape)
    ):
        raise ValueError(
            f"NADE '{name}' takes two inputs, [conditioning, frames], got {input_shape}."
        )
    return [tuple(s) for s in input_shape]
