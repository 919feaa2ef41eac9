"""Deep RNN architectures of Pascanu, Gulcehre, Cho & Bengio (ICLR 2014).

"How to Construct Deep Recurrent Neural Networks" deepens an RNN in three
places; each is a layer or cell here, usable in stock `keras.layers.RNN`:

- deep transition (DT-RNN, DT(S)-RNN with shortcuts):
  `DeepTransitionCell`; for gated cells `DeepTransitionLSTMCell` and
  `DeepTransitionGRUCell` (the gates read an MLP of h_{t-1});
- deep output (DOT-RNN = deep transition + `DeepOutput`): `DeepOutput`, a
  per-time-step MLP for after any RNN with `return_sequences=True`;
- stacking (sRNN), with Graves's skip connections and residual stacking:
  `StackedCells`.

`DeepTransitionCell` also has skip connections across time (h_t receives
h_{t-d}). `keras_deeprnn.models.deep_rnn` builds any of these by name.

`RNN` is `keras.layers.RNN` with the input projection of our cells computed
for the whole sequence before the loop, and whole-sequence kernels with a
hand-written gradient for the LSTM, GRU and Elman RNN (the fast path).

For forecasting (`keras_deeprnn.models.forecasting` builds the models):
`NaiveForecast`, `TemporalDense`, `SeriesDecomposition`,
`ReversibleInstanceNorm`, `SegmentRNN`, `SegmentSeq2Seq` and `SelectChannels`.

For language models, `TiedEmbedding` is an embedding that is also the
output layer (Press & Wolf 2017).

For polyphonic music, `NADE` is the conditional NADE output of an
RNN-NADE (Boulanger-Lewandowski et al. 2012): the joint distribution of a
binary frame given the recurrent state, exact log-likelihood and key-by-key
sampling.

For tagging, `CRF` is a linear-chain CRF output layer, trained with
`CRFLoss` and decoded with `viterbi_decode`.

Intermediate layers use one of `UNIT_TYPES`: "tanh", "relu", "maxout"
(max over `maxout_pieces` linear pieces) and "lp", the learned-norm
pooling units of Gulcehre et al. 2014: over a group of N = `lp_group`
filters a_1..a_N,

    y = (sum_j s_j ** p) ** (1 / p),   s_j = sqrt(a_j ** 2 + eps ** 2),
    p = 1 + softplus(rho)                (rho trainable, one per unit)

where eps = `lp_epsilon` (default 1e-6) replaces |a_j| by a smooth
function at most eps away from it, so that the gradients at a_j = 0 (of
|a|, of log|a| in dy/dp, and of the root) are finite.
"""

from keras_deeprnn.layers._units import UNIT_TYPES
from keras_deeprnn.layers.crf import CRF
from keras_deeprnn.layers.crf import CRFLoss
from keras_deeprnn.layers.crf import crf_token_nll
from keras_deeprnn.layers.crf import viterbi_decode
from keras_deeprnn.layers.deep_output import DeepOutput
from keras_deeprnn.layers.deep_transition_cell import DeepTransitionCell
from keras_deeprnn.layers.deep_transition_gru_cell import DeepTransitionGRUCell
from keras_deeprnn.layers.deep_transition_lstm_cell import DeepTransitionLSTMCell
from keras_deeprnn.layers.forecasting import NaiveForecast
from keras_deeprnn.layers.forecasting import ReversibleInstanceNorm
from keras_deeprnn.layers.forecasting import SegmentRNN
from keras_deeprnn.layers.forecasting import SegmentSeq2Seq
from keras_deeprnn.layers.forecasting import SelectChannels
from keras_deeprnn.layers.forecasting import SeriesDecomposition
from keras_deeprnn.layers.forecasting import TemporalDense
from keras_deeprnn.layers.nade import NADE
from keras_deeprnn.layers.rnn import RNN
from keras_deeprnn.layers.stacked_cells import StackedCells
from keras_deeprnn.layers.tied_embedding import TiedEmbedding

__all__ = [
    "RNN",
    "UNIT_TYPES",
    "DeepTransitionCell",
    "DeepTransitionLSTMCell",
    "DeepTransitionGRUCell",
    "DeepOutput",
    "NADE",
    "StackedCells",
    "TiedEmbedding",
    "CRF",
    "CRFLoss",
    "crf_token_nll",
    "viterbi_decode",
    "NaiveForecast",
    "TemporalDense",
    "SeriesDecomposition",
    "ReversibleInstanceNorm",
    "SegmentRNN",
    "SegmentSeq2Seq",
    "SelectChannels",
]
