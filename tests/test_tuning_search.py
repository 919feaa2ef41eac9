"""Hyperparameter searches (`tuning.hypermodels`, `python -m tuning.search`):
the search space reaches the app models, a 3-trial search with each tuner
on tiny music data, TensorBoard hparams, the summary table, NaN trials."""

import glob
import json
import math
import shutil
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from test_music_cli import _arpeggios
from test_music_data import write_mat

from keras_deeprnn.cells import CELL_NAMES
from keras_deeprnn.models import KINDS
from keras_deeprnn.utils import sublayers
from tuning import search
from tuning.hypermodels import FORGET_GATE_CELLS
from tuning.hypermodels import HP_NAMES
from tuning.hypermodels import MusicHyperModel
from tuning.hypermodels import SentimentHyperModel
from tuning.hypermodels import TaggingHyperModel

MUSIC = ["--batch-size", "4", "--epochs", "2", "--fix", "units=4", "--verbose", "0"]


@pytest.fixture(scope="module")
def tiny_mat(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tuning")
    return write_mat(
        folder / "tiny.mat", _arpeggios(8, 8, 0), _arpeggios(4, 8, 1), _arpeggios(2, 8, 2)
    )


def _hp(hypermodel, **values):
    """HyperParameters with the space of `hypermodel` declared and `values` set."""
    hp = keras_tuner.HyperParameters()
    hypermodel.values(hp)
    hp.values.update(values)
    return hp


def _rnn_cell(model):
    layer = next(x for x in sublayers(model) if isinstance(x, keras.layers.RNN))
    return layer.cell


def test_space_covers_every_cell_and_architecture():
    hypermodel = MusicHyperModel(units=(4, 8))
    hp = keras_tuner.HyperParameters()
    hypermodel.values(hp)
    space = {p.name: p for p in hp.space}
    assert list(space) == [*HP_NAMES, "input_dropout"]
    assert (space["input_dropout"].min_value, space["input_dropout"].max_value) == (0, 0.3)
    assert list(space["cell"].values) == list(CELL_NAMES)
    assert list(space["arch"].values) == list(KINDS)
    assert [c.values for c in space["depth"].conditions] == [["dt", "dts", "dot", "dots", "srnn"]]
    assert [c.values for c in space["unit_type"].conditions] == [["dt", "dts", "dot", "dots"]]
    assert list(space["unit_type"].values) == ["tanh", "relu", "maxout", "lp"]
    assert (space["recurrent_dropout"].min_value, space["recurrent_dropout"].max_value) == (0, 0.7)
    assert (space["dropout"].min_value, space["dropout"].max_value) == (0, 0.7)
    assert set(space["forget_bias"].conditions[0].values) == set(FORGET_GATE_CELLS)
    assert "lstm-cifg" not in FORGET_GATE_CELLS and "lstm-vanilla" in FORGET_GATE_CELLS
    assert (space["units"].min_value, space["units"].max_value) == (4, 8)
    # A pinned MUT cell has no deep transition: only rnn and srnn are left.
    hp = keras_tuner.HyperParameters()
    MusicHyperModel(fixed={"cell": "mut2"}).values(hp)
    assert list(next(p for p in hp.space if p.name == "arch").values) == ["rnn", "srnn"]
    with pytest.raises(ValueError, match="Unknown hyperparameter"):
        MusicHyperModel(fixed={"width": 3})
    with pytest.raises(ValueError, match="no deep-transition form"):
        MusicHyperModel(fixed={"cell": "mut1", "arch": "dt"})


def test_chosen_values_reach_the_music_model():
    hypermodel = MusicHyperModel(units=(4, 8))
    model = hypermodel.build(
        _hp(
            hypermodel,
            cell="lstm",
            arch="rnn",
            units=6,
            dropout=0.25,
            learning_rate=0.004,
            clipnorm=2.5,
            forget_bias=1.75,
        )
    )
    cell = _rnn_cell(model)
    # Keras gate order i, f, c, o, zero-initialised: the f block holds the forget bias.
    bias = keras.ops.convert_to_numpy(cell.bias)
    np.testing.assert_allclose(bias[6:12], 1.75)
    np.testing.assert_allclose(np.delete(bias, np.s_[6:12]), 0.0)
    assert cell.units == 6
    assert [l.rate for l in model.layers if isinstance(l, keras.layers.Dropout)] == [0.25]
    noisy = hypermodel.build(_hp(hypermodel, cell="gru", arch="rnn", units=4, input_dropout=0.15))
    assert noisy.get_layer("input_dropout").rate == 0.15
    assert float(model.optimizer.learning_rate) == pytest.approx(0.004)
    assert model.optimizer.clipnorm == 2.5

    assert cell.recurrent_dropout == 0.0
    deep = hypermodel.build(
        _hp(
            hypermodel,
            cell="lstm-vanilla",
            arch="dts",
            depth=3,
            units=4,
            forget_bias=0.5,
            unit_type="maxout",
            recurrent_dropout=0.3,
        )
    )
    config = _rnn_cell(deep).get_config()
    assert (config["depth"], config["variant"], config["forget_bias"]) == (3, "vanilla", 0.5)
    assert (config["unit_type"], config["recurrent_dropout"]) == ("maxout", 0.3)
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="no deep-transition form"):
        hypermodel.build(_hp(hypermodel, cell="mut3", arch="dot", depth=2, unit_type="lp"))


def test_chosen_values_reach_the_sentiment_and_tagging_models():
    sentiment = SentimentHyperModel(50, 3, units=(4, 8), embedding_dim=4)
    model = sentiment.build(
        _hp(
            sentiment,
            cell="lstm-nog",
            arch="srnn",
            depth=2,
            units=5,
            learning_rate=0.01,
            clipnorm=0.5,
            forget_bias=2.0,
        )
    )
    cells = _rnn_cell(model).cells
    assert [(c.units, c.variant, c.forget_bias) for c in cells] == [(5, "nog", 2.0)] * 2
    assert model.output_shape == (None, 3) and model.optimizer.clipnorm == 0.5

    tagging = TaggingHyperModel(
        ["a", "b"], ["a", "b"], ["X", "Y"], units=(4, 8), word_dim=4, char_units=2, char_dim=2
    )
    model = tagging.build(
        _hp(tagging, cell="gru", arch="dt", depth=2, unit_type="relu", units=4, learning_rate=0.02)
    )
    assert tagging.values(_hp(tagging, cell="gru"))["forget_bias"] is None
    cell = model.get_layer("birnn_1").forward_layer.cell
    assert (type(cell).__name__, cell.units, cell.get_config()["depth"]) == (
        "DeepTransitionGRUCell",
        4,
        2,
    )
    assert cell.get_config()["unit_type"] == "relu"
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)


def _trials(project):
    return {
        p.parent.name: json.loads(p.read_text())
        for p in sorted(Path(project).glob("trial_*/trial.json"))
    }


def _hparams_sessions(project):
    """Trial id -> hparams logged to TensorBoard (session start infos)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    sessions = {}
    for path in glob.glob(str(Path(project) / "tensorboard" / "*" / "execution0" / "events*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "_hparams_/session_start_info":
                    data = plugin_data_pb2.HParamsPluginData.FromString(
                        value.metadata.plugin_data.content
                    )
                    info = data.session_start_info
                    sessions[info.group_name or Path(path).parts[-3]] = {
                        k: v.string_value or v.number_value for k, v in info.hparams.items()
                    }
    return sessions


@pytest.mark.parametrize(
    "tuner, extra",
    [
        # The cell pinned to one with every architecture, so that seed 0's
        # three draws cannot all be MUT cells with a deep transition.
        ("random", ["--fix", "cell=lstm"]),
        ("bayesian", ["--initial-points", "2", "--fix", "arch=rnn"]),
        ("hyperband", ["--factor", "2", "--fix", "arch=rnn"]),
    ],
)
def test_three_trial_search(tuner, extra, tiny_mat, tmp_path, capsys):
    code = search.main(
        [
            "music",
            "--data",
            str(tiny_mat),
            "--tuner",
            tuner,
            "--max-trials",
            "3",
            "--directory",
            str(tmp_path),
            *MUSIC,
            *extra,
        ]
    )
    assert code == 0
    project = tmp_path / "music"
    trials = _trials(project)
    assert len(trials) == 3
    done = {t["trial_id"]: t for t in trials.values() if t["status"] == "COMPLETED"}
    for trial in trials.values():
        if trial["status"] != "COMPLETED":  # only the MUT cells with a deep transition may fail
            assert trial["status"] == "FAILED" and "no deep-transition form" in trial["message"]
    assert done

    # The score is the best validation NLL of the trial's epochs, and the
    # checkpoint KerasTuner kept scores it again when evaluated independently.
    best_id = min(done, key=lambda i: done[i]["score"])
    best = done[best_id]
    observed = best["metrics"]["metrics"]["val_nll"]["observations"]
    assert best["score"] == pytest.approx(min(o["value"][0] for o in observed))
    values = best["hyperparameters"]["values"]
    hypermodel = MusicHyperModel(fixed={"units": 4})
    model = hypermodel.build(_hp(hypermodel, **values))
    model.load_weights(project / f"trial_{best_id}" / "checkpoint.weights.h5")
    from keras_deeprnn.data import music

    valid = music.piano_roll_dataset(music.load_music(str(tiny_mat))["valid"], 4)
    assert model.evaluate(valid, verbose=0, return_dict=True)["nll"] == pytest.approx(
        best["score"], rel=1e-4
    )

    # Every completed trial is in TensorBoard's hparams view with its values.
    sessions = _hparams_sessions(project)
    for trial_id, trial in done.items():
        logged = sessions[trial_id]
        chosen = trial["hyperparameters"]["values"]
        assert (logged["cell"], logged["arch"]) == (chosen["cell"], chosen["arch"])
        assert (logged["units"], logged["learning_rate"]) == pytest.approx(
            (chosen["units"], chosen["learning_rate"])
        )

    # The summary table ranks the completed trials by score.
    table = (project / "summary.md").read_text()
    assert table.split("\n\n", 1)[1] in capsys.readouterr().out
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")][1:]
    ranked = sorted(done, key=lambda i: done[i]["score"])
    assert [row[1] for row in rows] == ranked
    assert f"3 trials: {len(done)} completed" in table
    if tuner == "hyperband":
        # max_epochs 2, factor 2: two trials of 1 epoch, then the better one
        # trained on to epoch 2 (successive halving).
        first, second, third = (trials[f"trial_{i}"] for i in range(3))
        assert [t["hyperparameters"]["values"]["tuner/epochs"] for t in (first, second)] == [1, 1]
        carried = third["hyperparameters"]["values"]
        assert (carried["tuner/initial_epoch"], carried["tuner/epochs"]) == (1, 2)
        assert carried["tuner/trial_id"] == min("01", key=lambda i: done[i]["score"])


@pytest.mark.parametrize("schedule, factor", [("constant", 1.0), ("cosine", 0.55)])
def test_lr_schedule_reaches_the_trial_fit(tiny_mat, schedule, factor):
    from keras_deeprnn.data import music

    data = music.load_music(str(tiny_mat))
    train = music.piano_roll_dataset(data["train"], 4)
    hypermodel = MusicHyperModel(units=(4, 8))
    hp = _hp(hypermodel, cell="gru", arch="rnn", units=4, learning_rate=0.01, lr_schedule=schedule)
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, train, epochs=2, verbose=0)
    # The cosine's rate at the start of epoch 2 of 2: 0.1 + 0.9 (1 + cos(pi / 2)) / 2.
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01 * factor)


def test_cosine_follows_the_trial_time_budget_by_the_clock(tiny_mat):
    from keras_deeprnn.data import music
    from keras_deeprnn.training import TimeBudget

    data = music.load_music(str(tiny_mat))
    train = music.piano_roll_dataset(data["train"], 4, shuffle=False)  # 8 pieces: 2 batches
    hypermodel = MusicHyperModel(units=(4, 8))
    hp = _hp(hypermodel, cell="gru", arch="rnn", units=4, learning_rate=0.01, lr_schedule="cosine")
    model = hypermodel.build(hp)
    clock = {"t": 0.0}

    class Tick(keras.callbacks.Callback):  # 30 s a batch, before the budget reads the clock
        def on_train_batch_end(self, batch, logs=None):
            clock["t"] += 30.0

    class Record(keras.callbacks.Callback):
        rates = []

        def on_train_batch_end(self, batch, logs=None):
            self.rates.append(float(self.model.optimizer.learning_rate))

    budget = TimeBudget(100, clock=lambda: clock["t"])
    history = hypermodel.fit(
        hp, model, train, epochs=50, verbose=0, callbacks=[Tick(), budget, Record()]
    )
    # The rate at 30, 60, 90, 120 s of 100: 0.001 + 0.009 (1 + cos(pi min(f, 1))) / 2;
    # by epoch (50 epochs) it would have stayed near 0.01. The budget ends epoch 2.
    expected = [
        0.001 + 0.009 * (1 + math.cos(math.pi * min(t / 100, 1))) / 2 for t in (30, 60, 90, 120)
    ]
    np.testing.assert_allclose(Record.rates, expected, rtol=1e-6)
    assert len(history.epoch) == 2
    assert budget.cosine_from is None  # the caller's callback is left alone


def test_weight_noise_reaches_the_trial_fit(tiny_mat):
    from keras_deeprnn.data import music

    data = music.load_music(str(tiny_mat))
    train = music.piano_roll_dataset(data["train"], 8, shuffle=False)
    hypermodel = MusicHyperModel(units=(4, 8))
    space = next(p for p in _hp(hypermodel).space if p.name == "weight_noise")
    assert list(space.values) == [0.0, 0.025, 0.05, 0.075, 0.1, 0.15]
    losses = {}
    for std in (0.0, 0.5):
        # A rate of 1e-30: the weights stay where they are, so the training
        # loss differs only by the noise, which is taken off after each batch.
        keras.utils.set_random_seed(0)
        hp = _hp(hypermodel, cell="gru", arch="rnn", units=4, learning_rate=1e-30, weight_noise=std)
        model = hypermodel.build(hp)
        before = [w.copy() for w in model.get_weights()]
        history = hypermodel.fit(hp, model, train, epochs=1, verbose=0)
        for old, new in zip(before, model.get_weights()):
            np.testing.assert_allclose(new, old, atol=1e-6)
        losses[std] = history.history["loss"][0]
        clean = model.evaluate(train, verbose=0, return_dict=True)["loss"]
    assert losses[0.0] == pytest.approx(clean, rel=1e-5)
    assert abs(losses[0.5] - clean) > 1e-2


def test_nan_trial_is_marked_failed_and_the_search_goes_on(tiny_mat, tmp_path):
    from keras_deeprnn.data import music

    data = music.load_music(str(tiny_mat))
    train, valid = (music.piano_roll_dataset(data[s], 4) for s in ("train", "valid"))
    hypermodel = MusicHyperModel(
        fixed={
            "cell": "gru",
            "arch": "rnn",
            "units": 4,
            "dropout": 0.0,
            "recurrent_dropout": 0.0,
            "clipnorm": 1.0,
            "weight_noise": 0.0,
            "input_dropout": 0.0,
        }
    )
    hp = keras_tuner.HyperParameters()
    hp.Choice("learning_rate", [0.01, math.inf])  # an infinite step makes the weights NaN
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective=hypermodel.objective,
        max_trials=2,
        hyperparameters=hp,
        directory=str(tmp_path),
        seed=0,
        max_consecutive_failed_trials=2,
    )
    tuner.search(train, validation_data=valid, epochs=1, verbose=0)
    trials = {t.hyperparameters.values["learning_rate"]: t for t in tuner.oracle.trials.values()}
    assert set(trials) == {0.01, math.inf}
    assert trials[math.inf].status == "FAILED"
    assert "training loss became nan in epoch 1" in trials[math.inf].message
    assert trials[0.01].status == "COMPLETED" and math.isfinite(trials[0.01].score)
    table = search.summary_table(tuner.oracle)
    assert f"trial {trials[math.inf].trial_id}: FAILED" in table and "became nan" in table
    # A trial whose process was ended stays RUNNING in the oracle: the table says so.
    trials[0.01].status = "RUNNING"
    table = search.summary_table(tuner.oracle)
    assert f"trial {trials[0.01].trial_id}: RUNNING: unfinished (a resumed search" in table


def test_search_without_weights_resumes_from_a_copy_of_its_folder(tiny_mat, tmp_path, capsys):
    def run(directory, trials, *extra):
        argv = ["music", "--data", str(tiny_mat), "--directory", str(directory), *MUSIC]
        argv += ["--fix", "cell=gru", "--fix", "arch=rnn", "--keep-weights", "none"]
        return search.main([*argv, "--max-trials", str(trials), *extra])

    assert run(tmp_path / "a", 2) == 0
    first = _trials(tmp_path / "a" / "music")
    assert [t["status"] for t in first.values()] == ["COMPLETED"] * 2
    assert not list((tmp_path / "a").rglob("checkpoint*"))
    # The folder alone, moved elsewhere (as a commit carries it to another
    # session), resumes: its two trials are kept and a third one runs.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    assert run(tmp_path / "b", 3) == 0
    resumed = _trials(tmp_path / "b" / "music")
    assert [t["status"] for t in resumed.values()] == ["COMPLETED"] * 3
    for name, trial in first.items():
        assert resumed[name]["score"] == trial["score"]
        assert resumed[name]["hyperparameters"] == trial["hyperparameters"]
    assert "3 trials: 3 completed" in capsys.readouterr().out
    assert run(tmp_path / "c", 2, "--tuner", "hyperband") == 2
    assert "does not work with hyperband" in capsys.readouterr().err


def test_a_resume_with_other_trial_options_is_refused(tiny_mat, tmp_path, capsys):
    def run(trials, *extra):
        argv = ["music", "--data", str(tiny_mat), "--directory", str(tmp_path), *MUSIC]
        argv += ["--fix", "cell=gru", "--fix", "arch=rnn", "--keep-weights", "none"]
        return search.main([*argv, "--max-trials", str(trials), *extra])

    assert run(1) == 0
    recorded = json.loads((tmp_path / "music" / "search.json").read_text())
    assert ["cell", "gru"] in recorded["fix"] and "max_trials" not in recorded
    first = _trials(tmp_path / "music")
    capsys.readouterr()
    # Options that change the trials: refused, naming each, the trial kept.
    assert run(2, "--transpose", "2", "--fix", "units=9") == 2
    err = capsys.readouterr().err
    assert "--transpose was 0, now 2" in err and "--fix was" in err and "--project-name" in err
    assert _trials(tmp_path / "music") == first
    # More trials and another summary length: a later slice of the same search.
    assert run(2, "--top", "3") == 0
    assert len(_trials(tmp_path / "music")) == 2
    # --overwrite starts another search, recorded afresh.
    assert run(1, "--transpose", "2", "--overwrite") == 0
    assert json.loads((tmp_path / "music" / "search.json").read_text())["transpose"] == 2
    assert len(_trials(tmp_path / "music")) == 1
    (tmp_path / "music" / "search.json").write_text("{not json")
    assert run(2) == 2 and "search.json is unreadable" in capsys.readouterr().err


def _validation_epochs(project):
    """Epochs of the one trial in `project` that TensorBoard logged a
    validation NLL for."""
    (path,) = glob.glob(
        str(Path(project) / "tensorboard" / "*" / "execution0" / "validation" / "*")
    )
    return sum(
        value.tag == "epoch_nll"
        for event in tf.compat.v1.train.summary_iterator(path)
        for value in event.summary.value
    )


def test_patience_ends_a_trial_that_stops_improving(tiny_mat, tmp_path):
    # A rate of 1e-30 leaves the weights as they are: the validation NLL of
    # epoch 2 equals epoch 1's, not better, so patience 1 ends the trial there.
    argv = ["music", "--data", str(tiny_mat), *MUSIC, "--max-trials", "1"]
    argv += ["--fix", "cell=gru", "--fix", "arch=rnn", "--fix", "learning_rate=1e-30"]
    assert (
        search.main([*argv, "--directory", str(tmp_path / "a"), "--epochs", "6", "--patience", "1"])
        == 0
    )
    assert _validation_epochs(tmp_path / "a" / "music") == 2
    assert search.main([*argv, "--directory", str(tmp_path / "b"), "--epochs", "3"]) == 0
    assert _validation_epochs(tmp_path / "b" / "music") == 3
    with pytest.raises(SystemExit) as exit_:
        search.main([*argv, "--directory", str(tmp_path / "c"), "--patience", "0"])
    assert exit_.value.code == 2
    assert not (tmp_path / "c").exists()  # refused before the tuner made its folder


def test_trial_time_budget_ends_a_slow_trial(tiny_mat, tmp_path, capsys):
    # A budget of 6 ms is spent within the first epoch: the trial ends after
    # it, scored (its validation NLL logged) like a finished one.
    argv = ["music", "--data", str(tiny_mat), *MUSIC, "--max-trials", "1", "--epochs", "4"]
    argv += ["--fix", "cell=gru", "--fix", "arch=rnn", "--directory", str(tmp_path)]
    assert search.main([*argv, "--trial-time-budget", "0.0001"]) == 0
    assert _validation_epochs(tmp_path / "music") == 1
    (trial,) = glob.glob(str(tmp_path / "music" / "trial_*" / "trial.json"))
    record = json.loads(Path(trial).read_text())
    assert record["status"] == "COMPLETED" and np.isfinite(record["score"])
    with pytest.raises(SystemExit):
        search.main([*argv, "--trial-time-budget", "0"])
    assert "--trial-time-budget: must be a number > 0" in capsys.readouterr().err


def test_bad_arguments_are_reported(tiny_mat, tmp_path, capsys):
    assert (
        search.main(
            ["music", "--data", str(tiny_mat), "--fix", "width=3", "--directory", str(tmp_path)]
        )
        == 2
    )
    assert "Unknown hyperparameter(s) ['width']" in capsys.readouterr().err
    assert (
        search.main(
            ["music", "--data", str(tiny_mat), "--max-trials", "0", "--directory", str(tmp_path)]
        )
        == 2
    )
    assert "--max-trials must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        search.main(["music", "--units", "8"])
    assert "--units takes MIN,MAX" in capsys.readouterr().err


@pytest.mark.slow
def test_tasks_search_runs_the_evolution_oracle(tmp_path):
    pytest.importorskip("tuning.evolution")
    from keras_deeprnn.cells.graph import GRU_GENOME
    from keras_deeprnn.cells.graph import LSTM_GENOME

    assert (
        search.main(
            [
                "tasks",
                "--units",
                "4",
                "--steps",
                "2",
                "--max-trials",
                "2",
                "--directory",
                str(tmp_path),
                "--verbose",
                "0",
            ]
        )
        == 0
    )
    trials = _trials(tmp_path / "tasks")
    # The population starts with the GRU and the LSTM genomes.
    assert {t["hyperparameters"]["values"]["genome"] for t in trials.values()} == {
        GRU_GENOME,
        LSTM_GENOME,
    }
    assert all(t["status"] == "COMPLETED" for t in trials.values())
    assert GRU_GENOME in (tmp_path / "tasks" / "summary.md").read_text()
