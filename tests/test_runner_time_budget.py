"""The wall-clock budget of `runner.fit` and `--time-budget`
(`keras_deeprnn.training.TimeBudget` with `whole_epochs`), on a clock the
test advances by hand."""

import argparse

import keras
import numpy as np
import pytest

from apps.common import cli
from apps.common import runner
from keras_deeprnn.training import TimeBudget


class Clock:
    """Seconds that pass only when a batch ends (`tick`, a callback placed
    before the budget)."""

    def __init__(self, per_batch):
        self.now, self.per_batch = 0.0, per_batch
        clock = self

        class Tick(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                clock.now += clock.per_batch

        self.tick = Tick()

    def __call__(self):
        return self.now


class Batches(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(batch)


def _fit(budget, clock, epochs=20):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((16, 3), "float32")  # 4 batches of 4
    counter = Batches()
    history = model.fit(
        x,
        x[:, :1],
        batch_size=4,
        epochs=epochs,
        verbose=0,
        callbacks=[clock.tick, budget, counter],
    )
    return history, counter


def test_stops_at_the_last_epoch_end_that_fits():
    clock = Clock(per_batch=1.0)  # 4 s an epoch
    budget = TimeBudget(10.0, whole_epochs=True, clock=clock)
    history, counter = _fit(budget, clock)
    # After epoch 1: 4 s + 4 s <= 10 s, go on; after epoch 2: 8 + 4 > 10, stop.
    assert len(history.epoch) == 2 and len(counter.seen) == 8
    assert budget.stopped == (2, None) and "after epoch 2" in budget.reason
    # Exactly enough for three epochs: three run.
    clock = Clock(per_batch=1.0)
    history, _ = _fit(TimeBudget(12.0, whole_epochs=True, clock=clock), clock)
    assert len(history.epoch) == 3


def test_an_epoch_longer_than_the_budget_is_cut_at_a_batch():
    clock = Clock(per_batch=1.0)
    budget = TimeBudget(2.5, whole_epochs=True, clock=clock)
    history, counter = _fit(budget, clock)
    # Batches end at 1, 2, 3 s: the third ends past 2.5 s.
    assert len(history.epoch) == 1 and counter.seen == [0, 1, 2]
    assert budget.stopped == (1, 3)
    assert "during epoch 1, stopped after its batch 3" in budget.reason


def test_no_budget_runs_every_epoch_and_bad_budgets_are_refused():
    clock = Clock(per_batch=1.0)
    history, _ = _fit(TimeBudget(1e9, whole_epochs=True, clock=clock), clock, epochs=3)
    assert len(history.epoch) == 3
    with pytest.raises(ValueError, match="must be a number > 0"):
        TimeBudget(0)
    p = argparse.ArgumentParser()
    cli.add_fit_options(p, epochs=1, patience=1, lr=1e-3, clipnorm=0.0, time_budget=True)
    assert cli.seconds(p.parse_args(["--time-budget", "1.5"]).time_budget) == 90.0
    assert p.parse_args([]).time_budget is None
    with pytest.raises(SystemExit):
        p.parse_args(["--time-budget", "0"])


def test_runner_fit_stops_within_a_real_budget(tmp_path, capsys):
    import time

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.1)

    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(8)  # 4 batches, >= 0.4 s
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    history = runner.fit(
        model,
        data,
        data,
        tmp_path / "run",
        epochs=100,
        monitor="val_loss",
        verbose=0,
        callbacks=[Slow()],
        time_budget=2.0,
    )
    # 100 epochs take at least 40 s; the budget stops the run long before
    # (how many epochs fit depends on the machine's load: the clocked
    # tests above check the arithmetic).
    assert 1 <= len(history.epoch) < 100
    assert "time budget: " in capsys.readouterr().out


def test_without_whole_epochs_the_budget_is_spent_to_the_batch():
    clock = Clock(per_batch=1.0)
    budget = TimeBudget(10.0, clock=clock)
    history, counter = _fit(budget, clock)
    # Epochs end at 4 and 8 s; the batch ending at 10 s spends the budget.
    assert len(history.epoch) == 3 and len(counter.seen) == 10
    assert budget.stopped == (3, 2)


def test_runner_fit_anneals_over_the_budget_and_reports_the_stop(tmp_path):
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(8)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(runner.learning_rate(1e-3, "cosine")), "mse")
    history = runner.fit(
        model,
        data,
        data,
        tmp_path / "run",
        epochs=5,
        monitor="val_loss",
        verbose=0,
        time_budget=1e-9,  # spent by the first batch
        cosine_from=1e-3,
    )
    # With the cosine the budget is spent to the batch, not to the epoch.
    assert history.stopped_by_time_budget == (1, 1)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)  # the cosine's end


def test_learning_rate_schedules():
    assert runner.learning_rate(2e-3) == 2e-3
    assert runner.learning_rate(2e-3, "cosine") == 2e-3  # left to fit's cosine_from
    schedule = runner.learning_rate(2e-3, "cosine", decay_steps=100)
    for step in (0, 50, 100):
        expected = 2e-4 + (2e-3 - 2e-4) * (1 + np.cos(np.pi * step / 100)) / 2
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="--lr-schedule 'linear'"):
        runner.learning_rate(2e-3, "linear")
