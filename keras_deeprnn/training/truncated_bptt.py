"""Truncated backpropagation through time with carried state.

Full BPTT over a sequence of length T costs memory proportional to T.
Truncated BPTT (Williams & Peng 1990; Sutskever 2013; Pascanu et al. 2013)
cuts each sequence into windows of k steps, backpropagates within a window
only, and carries the recurrent state from one window to the next, so the
forward pass still sees the whole past:

    h_{jk} = f(h_{jk - 1}, x_{jk}),   gradients stop at h_{jk - 1}.

`windows` does the cutting; `fit_truncated` trains a stateful Keras model on
the windows, resetting its state at every sequence start.

For one long sequence (a text) cut into parallel streams
(`keras_deeprnn.data.streams`), plain `model.fit` does the same on a
stateful copy of the model (`stateful_clone`) with the `ResetStates`
callback, which starts every pass (each training epoch, each evaluation)
from zero states.
"""

import keras
import numpy as np

from keras_deeprnn import _compat


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Argument `{name}` must be a positive integer, got {value!r}.")


def _as_sequences(name, sequences):
    if isinstance(sequences, np.ndarray) and sequences.dtype != object:
        sequences = list(sequences)
    sequences = [np.asarray(s) for s in sequences]
    if not sequences:
        raise ValueError(f"Argument `{name}` is empty: give at least one sequence.")
    for i, s in enumerate(sequences):
        if s.ndim < 1 or len(s) == 0:
            raise ValueError(
                f"`{name}[{i}]` must be a non-empty sequence (time, ...); got shape {s.shape}."
            )
        if s.shape[1:] != sequences[0].shape[1:]:
            raise ValueError(
                f"All `{name}` must have the same per-step shape; `{name}[0]` has "
                f"{sequences[0].shape[1:]} and `{name}[{i}]` has {s.shape[1:]}."
            )
    return sequences


def windows(inputs, k, batch_size, targets=None):
    """Cuts variable-length sequences into batches of windows of k steps.

    Sequences are taken in the given order, `batch_size` at a time (the last
    batch is filled up with empty slots). The sequences of a batch are
    padded with zeros to a multiple of k and cut into windows; window j of a
    batch covers steps [j k, (j + 1) k) of each of its sequences. A stateful
    model that runs the windows in order sees each sequence whole, provided
    it resets its state where `reset` is True.

    Args:
        inputs: A list of arrays `(T_i, ...)` (T_i >= 1, same per-step
            shape).
        k: Window length in steps.
        batch_size: Sequences per batch.
        targets: An optional list of arrays `(T_i, ...)`, one per input
            sequence, cut the same way.

    Returns:
        A dict of NumPy arrays over the `N` windows: `"x"` `(N, batch_size,
        k, ...)`, `"y"` (with `targets`), `"mask"` `(N, batch_size, k)`
        float32 (1 on real steps, 0 on padding) and `"reset"` `(N,)` bool
        (True on the first window of each batch of sequences).

    Example:

    >>> w = windows([np.arange(5.0), np.arange(3.0)], k=2, batch_size=2)
    >>> w["x"].shape, w["reset"].tolist()
    ((3, 2, 2), [True, False, False])
    >>> w["mask"][2].tolist()
    [[1.0, 0.0], [0.0, 0.0]]
    """
    _check_positive("k", k)
    _check_positive("batch_size", batch_size)
    inputs = _as_sequences("inputs", inputs)
    streams = {"x": inputs}
    if targets is not None:
        targets = _as_sequences("targets", targets)
        if [len(t) for t in targets] != [len(s) for s in inputs]:
            raise ValueError(
                "`targets` must have one sequence per input sequence, of the same length; "
                f"got lengths {[len(t) for t in targets]} for {[len(s) for s in inputs]}."
            )
        streams["y"] = targets
    out = {name: [] for name in (*streams, "mask", "reset")}
    for start in range(0, len(inputs), batch_size):
        lengths = [len(s) for s in inputs[start : start + batch_size]]
        steps = -(-max(lengths) // k) * k
        for name, sequences in streams.items():
            padded = np.zeros((batch_size, steps) + sequences[0].shape[1:], sequences[0].dtype)
            for slot, s in enumerate(sequences[start : start + batch_size]):
                padded[slot, : len(s)] = s
            out[name].extend(np.split(padded, steps // k, axis=1))
        mask = np.zeros((batch_size, steps), "float32")
        for slot, length in enumerate(lengths):
            mask[slot, :length] = 1.0
        out["mask"].extend(np.split(mask, steps // k, axis=1))
        out["reset"].extend([True] + [False] * (steps // k - 1))
    return {name: np.stack(values) for name, values in out.items()}


def _stateful_layers(model):
    """The stateful recurrent layers of `model` (nested models included)."""
    layers, todo = [], list(model.layers)
    while todo:
        layer = todo.pop(0)
        if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
            if layer.stateful:
                layers.append(layer)
        else:
            todo.extend(getattr(layer, "layers", []))  # nested models
    if not layers:
        raise ValueError(
            "fit_truncated needs a model with stateful recurrent layers, e.g. "
            "keras.layers.RNN(cell, return_sequences=True, stateful=True) after "
            "keras.Input(batch_shape=(batch_size, None, features))."
        )
    return layers


def fit_truncated(
    model,
    inputs,
    targets,
    k,
    batch_size,
    epochs=1,
    shuffle=True,
    seed=None,
    callbacks=None,
    verbose=0,
):
    """Trains a stateful model with truncated BPTT over windows of k steps.

    Each epoch orders the sequences (shuffled with `shuffle`), cuts them
    with `windows`, and runs `model.train_on_batch` on the windows in order
    with the padding masked out (`sample_weight` = the mask, scaled so that
    each window's loss is the mean over its real steps). The states of the
    model's stateful recurrent layers carry over from window to window and
    are reset to zeros at each batch's first window. Keras callbacks
    (`TensorBoard`, `ModelCheckpoint`, `WeightNoise`, ...) are driven as in
    `model.fit`, and the logs are running means over the epoch's windows,
    as `model.fit` would report for a data set of these windows.

    Args:
        model: A compiled Keras model whose recurrent layers are
            `stateful=True` with the batch size fixed to `batch_size` and
            `return_sequences=True`.
        inputs, targets: Lists of arrays `(T_i, ...)`, as for `windows`.
        k: Window length (the truncation) in steps.
        batch_size: Sequences per batch; the model's fixed batch size.
        epochs: Passes over the data.
        shuffle: Whether to shuffle the order of the sequences every epoch.
        seed: Seed of the shuffling.
        callbacks: A list of `keras.callbacks.Callback`.
        verbose: 0 (silent) or 1 (a progress bar).

    Returns:
        The `keras.callbacks.History` of the run.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input(batch_shape=(2, None, 3)),
    ...     keras.layers.RNN(GRUCell(4), return_sequences=True, stateful=True),
    ...     keras.layers.Dense(1)])
    >>> model.compile("adam", "mse")
    >>> x = [np.ones((7, 3)), np.ones((5, 3))]
    >>> y = [np.ones((7, 1)), np.ones((5, 1))]
    >>> len(fit_truncated(model, x, y, k=3, batch_size=2, epochs=2).history["loss"])
    2
    """
    layers = _stateful_layers(model)
    _check_positive("epochs", epochs)
    windows(inputs, k, batch_size, targets)  # validates the data up front
    rng = np.random.default_rng(seed)
    callbacks = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=bool(verbose),
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=None,
    )
    model.stop_training = False
    callbacks.on_train_begin()
    logs = {}
    for epoch in range(epochs):
        order = rng.permutation(len(inputs)) if shuffle else np.arange(len(inputs))
        data = windows([inputs[i] for i in order], k, batch_size, [targets[i] for i in order])
        callbacks.on_epoch_begin(epoch)
        totals = {}
        for step in range(len(data["reset"])):
            if data["reset"][step]:
                for layer in layers:
                    layer.reset_states()
            callbacks.on_train_batch_begin(step)
            # Keras's default loss reduction divides by all (batch, k) steps;
            # rescaled, the mask makes the loss a mean over the real steps.
            mask = data["mask"][step]
            batch_logs = model.train_on_batch(
                data["x"][step],
                data["y"][step],
                sample_weight=mask * (mask.size / mask.sum()),
                return_dict=True,
            )
            # `train_on_batch` reports one window; `fit` would report the
            # running mean of its equal-sized batches.
            for name, value in batch_logs.items():
                totals[name] = totals.get(name, 0.0) + float(value)
            logs = {name: total / (step + 1) for name, total in totals.items()}
            callbacks.on_train_batch_end(step, logs)
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end(logs)
    return model.history


class ResetStates(keras.callbacks.Callback):
    """Resets the states of a model's stateful recurrent layers to zeros at
    the start of every training epoch, evaluation and prediction, and with
    `probability` also each stream's states before a training batch.

    With `model.fit` over stream batches (`keras_deeprnn.data.streams`),
    each epoch then reads every stream from its start, and the validation
    pass (which `fit` runs through the same stateful layers at the end of
    an epoch) starts from zero states instead of the training streams'.

    Zero states are otherwise rare in training (B per epoch, always at the
    same places of the text), yet evaluation and generation start from
    them. A model that never learned to start cold can fall from zero
    states into a regime it never left in training (one of our character
    LSTMs predicted 7.7 nats per character for the first 5,000 characters
    after a cold start on "?", while it scored 1.8 from other cold starts:
    docs/text.md). `probability` p resets each stream (row b of the batch,
    in every stateful layer at once) before each training batch with
    probability p, independently, so that the model also learns to start
    from zero states at random places.

    Args:
        probability: Per-stream reset probability before each training
            batch (default 0: only at the epoch start).
        seed: Seed of the random resets.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input(batch_shape=(2, None, 3)),
    ...     keras.layers.RNN(GRUCell(4), return_sequences=True, stateful=True)])
    >>> model.compile("adam", "mse")
    >>> x = np.ones((4, 5, 3), "float32")
    >>> _ = model.fit(x, np.ones((4, 5, 4)), batch_size=2, shuffle=False, verbose=0,
    ...               callbacks=[ResetStates(probability=0.1, seed=0)])
    """

    def __init__(self, probability=0.0, seed=None):
        super().__init__()
        if isinstance(probability, bool) or not 0 <= probability < 1:
            raise ValueError(f"Argument `probability` must be in [0, 1), got {probability!r}.")
        self.probability = float(probability)
        self.rng = np.random.default_rng(seed)

    def set_model(self, model):
        super().set_model(model)
        self.layers = _stateful_layers(model)

    def state_variables(self):
        """The state variables of every stateful layer, batch first."""
        return [v for layer in self.layers for v in keras.tree.flatten(layer.states)]

    def reset(self):
        for layer in self.layers:
            layer.reset_states()

    def on_epoch_begin(self, epoch, logs=None):
        self.reset()

    def on_train_batch_begin(self, batch, logs=None):
        if not self.probability:
            return
        variables = self.state_variables()
        rows = self.rng.random(variables[0].shape[0]) < self.probability
        if rows.any():
            keep = (~rows).astype("float32")[:, None]
            for v in variables:
                v.assign(v * keep.astype(v.dtype))

    def on_test_begin(self, logs=None):
        self.reset()

    def on_predict_begin(self, logs=None):
        self.reset()


def stateful_clone(model, batch_size=None, stateful=True):
    """A copy of `model` with the same weights whose recurrent layers are
    stateful (`stateful=True`, batch size fixed to `batch_size`) or not
    (`stateful=False`, any batch size).

    Train the stateful copy with truncated BPTT (`ResetStates`, or
    `fit_truncated`), save and export the stateless one (exports carry
    the states as explicit inputs and outputs instead). The copies share
    no variables: copy the weights back with `set_weights` after training.
    The model must have one input (e.g. the token ids of
    `keras_deeprnn.models.language_model`).

    Args:
        model: A built functional or Sequential Keras model.
        batch_size: The fixed batch size (required for `stateful`).
        stateful: Whether the copy's recurrent layers carry their states.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None, 3)),
    ...     keras.layers.RNN(GRUCell(4), return_sequences=True)])
    >>> train = stateful_clone(model, batch_size=8)
    >>> train.input_shape, train.layers[0].stateful
    ((8, None, 3), True)
    """
    if stateful:
        _check_positive("batch_size", batch_size)
    elif batch_size is not None:
        _check_positive("batch_size", batch_size)
    if not isinstance(model, keras.Model) or not model.inputs or len(model.inputs) != 1:
        raise ValueError(
            "stateful_clone needs a built functional or Sequential model with one input."
        )
    inputs = model.inputs[0]

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.RNN):
            config["stateful"] = stateful
        return layer.__class__.from_config(config)

    new_input = keras.Input(
        batch_shape=(batch_size, *inputs.shape[1:]),
        dtype=inputs.dtype,
        name=getattr(_compat.input_layer(inputs), "name", None),
    )
    copy = keras.models.clone_model(model, input_tensors=new_input, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
