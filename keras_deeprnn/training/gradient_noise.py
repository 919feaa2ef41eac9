"""Annealed Gaussian gradient noise (Neelakantan et al. 2015)."""

import random

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class GradientNoise(keras.optimizers.Optimizer):
    """Wraps an optimizer and adds annealed Gaussian noise to the gradients.

    At training step `t` (the wrapped optimizer's `iterations`, from 0) every
    gradient gets independent noise before the wrapped optimizer sees it:

        g_t <- g_t + N(0, sigma_t^2),    sigma_t^2 = eta / (1 + t)^gamma

    (Neelakantan et al. 2015, "Adding Gradient Noise Improves Learning for
    Very Deep Networks": eta in {0.01, 0.3, 1.0}, gamma = 0.55). The wrapped
    optimizer then clips (`clipnorm`, `global_clipnorm`, `clipvalue`) and
    updates as usual, so clipping applies to the noisy gradient.

    The noise is drawn with stateless random ops seeded by `(seed + variable
    index, t)`: it needs no state of its own, is the same on every replica of
    a `tf.distribute` strategy, and resumes exactly after a checkpoint. The
    wrapper serializes with the model (`model.save`, `.keras`), wrapped
    optimizer included. TensorFlow backend only.

    Args:
        inner_optimizer: A `keras.optimizers.Optimizer` (or its name or
            config) that does the update.
        eta: Noise variance at step 0 (> 0).
        gamma: Decay exponent of the variance (>= 0).
        seed: Integer seed of the noise (None: a random one, drawn from
            Python's `random`; give one under multi-worker strategies, so
            that every worker process draws the same noise).
        name: Name of the optimizer.

    Example:

    >>> opt = GradientNoise(keras.optimizers.Adam(1e-3, clipnorm=1.0), eta=0.01)
    >>> model.compile(optimizer=opt, loss="mse")  # doctest: +SKIP
    """

    def __init__(self, inner_optimizer, eta=0.01, gamma=0.55, seed=None, name=None):
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or eta <= 0:
            raise ValueError(f"Argument `eta` must be a positive number, got {eta!r}.")
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma < 0:
            raise ValueError(f"Argument `gamma` must be a number >= 0, got {gamma!r}.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"Argument `seed` must be an integer or None, got {seed!r}.")
        inner = keras.optimizers.get(inner_optimizer)
        if isinstance(inner, GradientNoise):
            raise ValueError("Argument `inner_optimizer` is already a GradientNoise.")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner
        self.eta = float(eta)
        self.gamma = float(gamma)
        self.seed = seed
        # Like Keras initializers: an unseeded wrapper picks its seed now.
        self._seed = seed if seed is not None else random.randint(0, 2**30)

    def build(self, var_list):
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    def noise_stddev(self, step):
        """sigma_t = sqrt(eta / (1 + t)^gamma) at step `t`."""
        step = ops.cast(step, "float32")
        return ops.sqrt(self.eta / ops.power(1.0 + step, self.gamma))

    def apply(self, grads, trainable_variables=None):
        if not self.built and trainable_variables is not None:
            self.build(list(trainable_variables))
            self.built = True
        step = ops.cast(self.iterations, "int64")
        stddev = self.noise_stddev(step)
        noisy = []
        for index, grad in enumerate(grads):
            if grad is None:
                noisy.append(None)
                continue
            seed = tf.stack([ops.cast(self._seed + index, "int64"), step])
            noise = tf.random.stateless_normal(ops.shape(grad), seed=seed, dtype=grad.dtype)
            noisy.append(grad + ops.cast(stddev, grad.dtype) * noise)
        self.inner_optimizer.apply(noisy, trainable_variables)

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        raise NotImplementedError(
            "GradientNoise supports the TensorFlow backend only (stateful "
            "`apply`), not JAX's `stateless_apply`."
        )

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "eta": self.eta,
            "gamma": self.gamma,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(
            config.pop("inner_optimizer"), custom_objects=custom_objects
        )
        return cls(inner, **config)
