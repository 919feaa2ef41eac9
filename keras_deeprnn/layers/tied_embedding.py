"""An embedding whose matrix is also the output layer (Press & Wolf 2017)."""

import keras
from keras import initializers
from keras import ops
from keras import regularizers

from keras_deeprnn.layers._units import check_bool
from keras_deeprnn.layers._units import check_int


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class TiedEmbedding(keras.layers.Layer):
    """A token embedding that also maps vectors back to token logits.

    "Using the Output Embedding to Improve Language Models" (Press & Wolf
    2017) ties a language model's input embedding and its output layer: one
    matrix E (vocabulary V, dim) embeds token i as row E_i and scores a
    vector h (dim,) against every token,

        embed:    x_t = E[i_t]                       call(ids)
        reverse:  logits = h E^T + b                 call(h, reverse=True)

    (b: the output bias over the vocabulary, or none). The model calls the
    same layer twice, once each way, so the gradient of E sums both uses
    and the model has V x dim fewer weights than with a separate output
    layer. The model's last hidden vectors must have `output_dim` features
    (add a `Dense(output_dim)` projection where the recurrent state is
    wider, as Press & Wolf do).

    Weights: `embeddings` (input_dim, output_dim), as in
    `keras.layers.Embedding` (so `set_weights` takes a trained Embedding's
    matrix first), and with `output_bias` `output_bias` (input_dim,).

    Args:
        input_dim: The vocabulary size V.
        output_dim: The embedding size.
        output_bias: Whether the reverse map adds a bias (default True).
        embeddings_initializer: Initializer of E (default "uniform", that
            of `keras.layers.Embedding`).
        output_bias_initializer: Initializer of b (default zeros).
        embeddings_regularizer: Optional regularizer of E.

    Call arguments:
        inputs: Token ids (any shape), or with `reverse=True` vectors
            (..., output_dim).
        reverse: False: embed (..., output_dim); True: logits over the
            vocabulary (..., input_dim).

    Example:

    >>> tied = TiedEmbedding(10, 4)
    >>> ids = keras.Input((None,), dtype="int32")
    >>> rnn = keras.layers.SimpleRNN(4, return_sequences=True)
    >>> model = keras.Model(ids, tied(rnn(tied(ids)), reverse=True))
    >>> tuple(model(np.zeros((2, 3), "int32")).shape), model.count_params()
    ((2, 3, 10), 86)
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        output_bias=True,
        embeddings_initializer="uniform",
        output_bias_initializer="zeros",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = check_int("input_dim", input_dim, 1)
        self.output_dim = check_int("output_dim", output_dim, 1)
        self.output_bias = check_bool("output_bias", output_bias)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.output_bias_initializer = initializers.get(output_bias_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            name="embeddings",
        )
        self.bias = None
        if self.output_bias:
            self.bias = self.add_weight(
                shape=(self.input_dim,),
                initializer=self.output_bias_initializer,
                name="output_bias",
            )

    def call(self, inputs, reverse=False):
        if not reverse:
            if "int" not in str(inputs.dtype):
                inputs = ops.cast(inputs, "int32")
            return ops.take(ops.cast(self.embeddings, self.compute_dtype), inputs, axis=0)
        embeddings = ops.cast(self.embeddings, self.compute_dtype)
        logits = ops.matmul(ops.cast(inputs, self.compute_dtype), ops.transpose(embeddings))
        if self.bias is not None:
            logits = logits + ops.cast(self.bias, self.compute_dtype)
        return logits

    def compute_output_spec(self, inputs, reverse=False):
        if reverse:
            shape = (*inputs.shape[:-1], self.input_dim)
        else:
            shape = (*inputs.shape, self.output_dim)
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "output_bias": self.output_bias,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "output_bias_initializer": initializers.serialize(self.output_bias_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
        }
