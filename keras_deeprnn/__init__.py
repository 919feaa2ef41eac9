"""keras-deeprnn: recurrent cells and deep RNN architectures for Keras 3.

Importing the package registers every serializable class, so `.keras`
files that use them load with `keras.models.load_model(..., safe_mode=True)`.
"""

__version__ = "0.1.0"

from keras_deeprnn import cells  # noqa: E402
from keras_deeprnn import layers  # noqa: E402
from keras_deeprnn import metrics  # noqa: E402
from keras_deeprnn import models  # noqa: E402
from keras_deeprnn import seq2seq  # noqa: E402

__all__ = ["cells", "layers", "metrics", "models", "seq2seq"]
