"""keras-deeprnn: recurrent cells and deep RNN architectures for Keras 3."""

__version__ = "0.1.0"

from keras_deeprnn import cells  # noqa: E402
