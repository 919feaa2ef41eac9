"""A wall-clock budget for `model.fit`, with an optional cosine learning
rate over it."""

import math
import time

import keras


class TimeBudget(keras.callbacks.Callback):
    """Stops training once `seconds` of wall time have passed since
    `on_train_begin` (validation included), after the batch that used the
    last of them.

    Keras then ends the epoch as usual (the validation pass, checkpoints,
    early stopping), so a stopped run is saved like a finished one. With
    `whole_epochs`, training also stops at an epoch's end when another
    epoch as long as the longest so far would end past the budget: a run
    whose epochs take about the same time then ends at an epoch's end,
    inside the budget.

    `stopped` is `(epoch, step)` where it stopped (from 1; step None at an
    epoch's end), or None; `reason` says the same in words.

    With `cosine_from=lr`, the optimizer's learning rate also follows a
    cosine over the budget, by the wall clock: at a fraction f of the
    budget it is

        lr_f = floor + (lr - floor) (1 + cos(pi f)) / 2,   floor = lr * final_fraction

    (the annealing of SGDR, Loshchilov & Hutter 2017, and of nanoGPT, over
    time instead of steps, so that the run ends annealed however fast the
    machine is). It needs a float learning rate (not a schedule).

    Args:
        seconds: The budget, > 0.
        cosine_from: The initial learning rate of the cosine, or None (the
            learning rate is left alone).
        final_fraction: The last learning rate over the first.
        whole_epochs: Also stop early at an epoch's end, as above.
        clock: A function returning seconds (default `time.monotonic`).

    Example:

    >>> budget = TimeBudget(45 * 60, cosine_from=2e-3)
    """

    def __init__(
        self, seconds, cosine_from=None, final_fraction=0.1, whole_epochs=False, clock=None
    ):
        super().__init__()
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ValueError(f"Argument `seconds` must be a number > 0, got {seconds!r}.")
        if cosine_from is not None and not cosine_from > 0:
            raise ValueError(f"Argument `cosine_from` must be > 0, got {cosine_from!r}.")
        if not 0 <= final_fraction <= 1:
            raise ValueError(
                f"Argument `final_fraction` must be in [0, 1], got {final_fraction!r}."
            )
        self.seconds = float(seconds)
        self.cosine_from = cosine_from
        self.final_fraction = final_fraction
        self.whole_epochs = bool(whole_epochs)
        self.clock = clock or time.monotonic
        self.stopped = self.reason = None
        self.epoch = 0
        self.start = None

    def learning_rate(self, fraction):
        """The cosine's learning rate at `fraction` of the budget."""
        lr, floor = self.cosine_from, self.cosine_from * self.final_fraction
        return floor + (lr - floor) * (1 + math.cos(math.pi * min(fraction, 1.0))) / 2

    def on_train_begin(self, logs=None):
        self.start, self.longest = self.clock(), 0.0
        self.stopped = self.reason = None
        if self.cosine_from is not None:
            try:
                self.model.optimizer.learning_rate = self.learning_rate(0.0)
            except TypeError as error:  # Keras refuses to overwrite a schedule
                raise ValueError(
                    "TimeBudget(cosine_from=...) sets the learning rate itself: compile "
                    "the model with a float learning rate, not a schedule."
                ) from error

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_start = epoch, self.clock()

    def on_train_batch_end(self, batch, logs=None):
        fraction = (self.clock() - self.start) / self.seconds
        if self.cosine_from is not None:
            self.model.optimizer.learning_rate = self.learning_rate(fraction)
        if fraction >= 1 and self.stopped is None:
            self._stop(
                (self.epoch + 1, batch + 1),
                f"{self.seconds / 60:.3g} min spent during epoch {self.epoch + 1}, "
                f"stopped after its batch {batch + 1}",
            )

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        self.longest = max(self.longest, now - self.epoch_start)
        if (
            self.whole_epochs
            and self.stopped is None
            and now - self.start + self.longest > (self.seconds)
        ):
            self._stop(
                (epoch + 1, None),
                f"stopped after epoch {epoch + 1} at {(now - self.start) / 60:.1f} min: "
                f"another epoch (up to {self.longest / 60:.1f} min) would pass "
                f"{self.seconds / 60:.3g} min",
            )

    def _stop(self, where, reason):
        self.stopped, self.reason = where, reason
        self.model.stop_training = True
