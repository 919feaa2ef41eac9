"""Training techniques of the field that Keras does not already provide.

Gradient clipping is the optimizers' `clipnorm` / `global_clipnorm`;
checkpoints, early stopping and TensorBoard are Keras callbacks.
"""

from keras_deeprnn.training.gradient_norms import GradientNormLogger

__all__ = ["GradientNormLogger"]
