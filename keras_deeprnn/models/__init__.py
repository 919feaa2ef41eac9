"""Deep RNNs by name (Pascanu, Gulcehre, Cho & Bengio 2014) and their sizes.

- `deep_rnn(kind, units=..., ...)`: the layers of an "rnn", "dt", "dts",
  "dot", "dots" or "srnn" network.
- `count_params(kind, input_dim=..., units=..., output_dim=..., ...)`: its
  number of parameters, in closed form.
- `size_to_budget(kind, budget, input_dim, output_dim, ...)`: the units
  that bring it closest to a parameter budget.
- `language_model(vocabulary_size, units=..., kind=..., cell=...)`: token
  ids to next-token logits, any kind and cell, tied embeddings, variational
  dropout, stateful for truncated BPTT over streams.
- `sample_tokens`, `beam_search_tokens`: generation one step per token
  with carried states (`keras_deeprnn.models.generation`).
- `keras_deeprnn.models.forecasting`: forecasters of windows (naive,
  linear, DLinear, many-to-one RNN, SegRNN, encoder-decoder) and the mean
  of several (`average_forecaster`).
"""

from keras_deeprnn.models.architecture import KINDS
from keras_deeprnn.models.builder import deep_rnn
from keras_deeprnn.models.generation import beam_search_tokens
from keras_deeprnn.models.generation import sample_tokens
from keras_deeprnn.models.language import language_model
from keras_deeprnn.models.sizing import count_params
from keras_deeprnn.models.sizing import size_to_budget

__all__ = [
    "KINDS",
    "deep_rnn",
    "count_params",
    "size_to_budget",
    "language_model",
    "sample_tokens",
    "beam_search_tokens",
]
