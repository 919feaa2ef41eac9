"""Training techniques of the field that Keras does not already provide.

Gradient clipping is the optimizers' `clipnorm` / `global_clipnorm`;
checkpoints, early stopping and TensorBoard are Keras callbacks.
"""

from keras_deeprnn.training.gradient_noise import GradientNoise
from keras_deeprnn.training.gradient_norms import GradientNormLogger
from keras_deeprnn.training.hidden_gradients import HiddenGradientLogger
from keras_deeprnn.training.sparse_init import SparseInit
from keras_deeprnn.training.spectral import ScaledInit
from keras_deeprnn.training.spectral import normalize_recurrent
from keras_deeprnn.training.time_budget import TimeBudget
from keras_deeprnn.training.truncated_bptt import ResetStates
from keras_deeprnn.training.truncated_bptt import fit_truncated
from keras_deeprnn.training.truncated_bptt import stateful_clone
from keras_deeprnn.training.truncated_bptt import windows
from keras_deeprnn.training.weight_noise import WeightNoise

__all__ = [
    "GradientNoise",
    "GradientNormLogger",
    "HiddenGradientLogger",
    "ResetStates",
    "ScaledInit",
    "SparseInit",
    "TimeBudget",
    "WeightNoise",
    "fit_truncated",
    "normalize_recurrent",
    "stateful_clone",
    "windows",
]
