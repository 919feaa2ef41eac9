"""Gaussian weight noise on the forward pass (Graves 2011)."""

import keras
import numpy as np


class WeightNoise(keras.callbacks.Callback):
    """Adds Gaussian noise to the weights for each training minibatch.

    Before every training batch the callback draws `n ~ N(0, std^2)` for each
    noisy weight matrix and sets `W <- W + n`; after the batch it sets
    `W <- W - n`. The forward and backward passes of the batch therefore run
    at the noisy point, and the optimizer's update `delta`, computed from the
    gradient at `W + n`, lands on the clean weights:

        W_{t+1} = W_t + delta(dL/dW evaluated at W_t + n_t)

    One sample per minibatch, as in Graves (2011, "Practical Variational
    Inference for Neural Networks") and Pascanu et al.'s music experiments
    (std 0.075). Because the noise lives in the variables themselves it also
    reaches weights used inside the `keras.layers.RNN` loop. Evaluation,
    prediction and saved models see the clean weights: the noise is removed at
    the end of each batch, before validation and checkpoint callbacks run.

    Put this callback first in the callback list, so the others see clean
    weights at batch end. With `steps_per_execution > 1` Keras calls batch
    hooks once per execution, so one sample then covers that many batches.
    Weight decay and constraints act on the noisy point.

    Args:
        std: Standard deviation of the noise (> 0).
        layers: Layers (objects or names) whose weights get noise; None: all
            layers of the model.
        include_biases: Whether biases (weights named `bias`, such as the
            (2, 3 units) bias of a `reset_after` GRU) and vectors (peepholes,
            leaks, normalisation scales) get noise too; by default only the
            weight matrices do.
        seed: Integer seed of the noise (None: NumPy's global generator;
            give one under multi-worker strategies, so that every worker
            process perturbs its copy of the weights alike).

    Example:

    >>> model.fit(x, y, callbacks=[WeightNoise(0.075)])  # doctest: +SKIP
    """

    def __init__(self, std=0.075, layers=None, include_biases=False, seed=None):
        super().__init__()
        if isinstance(std, bool) or not isinstance(std, (int, float)) or std <= 0:
            raise ValueError(f"Argument `std` must be a positive number, got {std!r}.")
        if layers is not None and (isinstance(layers, (str, keras.layers.Layer)) or not layers):
            raise ValueError(
                "Argument `layers` must be None or a non-empty list of layers "
                f"or layer names, got {layers!r}."
            )
        self.std = float(std)
        self.layers = None if layers is None else list(layers)
        self.include_biases = bool(include_biases)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else np.random
        self._noise = []

    def noisy_variables(self):
        """The variables that get noise."""
        if self.layers is None:
            layers = [self.model]
        else:
            layers = [
                self.model.get_layer(layer) if isinstance(layer, str) else layer
                for layer in self.layers
            ]
        seen, chosen = set(), []
        for layer in layers:
            for variable in layer.trainable_variables:
                if id(variable) in seen:
                    continue
                seen.add(id(variable))
                is_bias = len(variable.shape) < 2 or "bias" in variable.name
                if self.include_biases or not is_bias:
                    chosen.append(variable)
        if not chosen:
            raise ValueError(
                "WeightNoise found no trainable weights to perturb in layers "
                f"{self.layers or 'of the model'} (include_biases="
                f"{self.include_biases})."
            )
        return chosen

    def on_train_begin(self, logs=None):
        self._variables = self.noisy_variables()

    def on_train_batch_begin(self, batch, logs=None):
        self._noise = []
        for variable in self._variables:
            noise = self._rng.normal(0.0, self.std, size=tuple(variable.shape))
            noise = noise.astype(variable.dtype)
            variable.assign_add(noise)
            self._noise.append((variable, noise))

    def on_train_batch_end(self, batch, logs=None):
        for variable, noise in self._noise:
            variable.assign_sub(noise)
        self._noise = []
