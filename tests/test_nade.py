"""The NADE output layer (RNN-NADE) against NumPy written from its formulas,
finite differences and exact probabilities; inside the music app."""

import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.music import generate
from apps.music.cli import main
from apps.music.model import build_model
from apps.music.model import compile_model
from apps.music.model import feed
from keras_deeprnn.layers import NADE


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference_log_prob(conditioning, frames, weights):
    """log p(frames | conditioning), one key after another (NumPy loops)."""
    w, v, b_v, b_h, u_v, u_h = weights
    out = np.zeros(frames.shape[:-1])
    for index in np.ndindex(*frames.shape[:-1]):
        c, x = conditioning[index], frames[index]
        visible = b_v + c @ u_v
        a = b_h + c @ u_h
        for i in range(len(x)):
            p = _sigmoid(visible[i] + _sigmoid(a) @ v[i])
            out[index] += np.log(p) if x[i] else np.log1p(-p)
            a = a + x[i] * w[i]
    return out


def reference_greedy(conditioning, weights):
    w, v, b_v, b_h, u_v, u_h = weights
    visible, a = b_v + conditioning @ u_v, b_h + conditioning @ u_h
    x = np.zeros(len(b_v))
    for i in range(len(x)):
        x[i] = float(visible[i] + _sigmoid(a) @ v[i] > 0)
        a = a + x[i] * w[i]
    return x


def _layer(keys, units=5, features=4, dtype="float32", seed=0, scale=1.0):
    layer = NADE(units, dtype=dtype)
    layer.build([(None, features), (None, keys)])
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0, scale, w.shape).astype(dtype) for w in layer.get_weights()])
    return layer


def _all_frames(keys):
    return np.array(list(itertools.product([0.0, 1.0], repeat=keys)), "float32")


def test_probabilities_of_all_frames_sum_to_one_and_match_numpy():
    layer = _layer(keys=8)
    frames = _all_frames(8)  # all 256 frames of 8 keys
    conditioning = np.random.default_rng(1).normal(size=(3, 1, 4)).astype("float32")
    conditioning = np.repeat(conditioning, len(frames), axis=1)
    frames = np.broadcast_to(frames, (3, 256, 8))
    log_p = np.asarray(layer.log_prob(conditioning, frames), "float64")
    assert log_p.shape == (3, 256)
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, rtol=1e-5)
    expected = reference_log_prob(conditioning, frames, layer.get_weights())
    np.testing.assert_allclose(log_p, expected, rtol=1e-5, atol=1e-5)
    # The layer's output is the teacher-forced logits: their cross-entropy
    # is the same number.
    # (the first frame is silent: no key on in the batch below is handled too)
    logits = np.asarray(layer([conditioning[:, :5], frames[:, :5]]), "float64")
    silent = np.asarray(layer([conditioning[:, 0], frames[:, 0]]), "float64")
    np.testing.assert_allclose(silent, logits[:, 0], rtol=1e-6)
    bce = frames[:, :5] * np.logaddexp(0, -logits) + (1 - frames[:, :5]) * np.logaddexp(0, logits)
    np.testing.assert_allclose(-bce.sum(-1), expected[:, :5], rtol=1e-5, atol=1e-5)


def test_gradient_matches_finite_differences():
    layer = _layer(keys=5, units=3, features=4, dtype="float64", seed=2)
    rng = np.random.default_rng(3)
    conditioning = rng.normal(size=(2, 3, 4))
    frames = (rng.random((2, 3, 5)) < 0.5).astype("float64")
    variables = [tf.Variable(conditioning)] + list(layer.trainable_variables)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer.log_prob(variables[0], frames))
    grads = [np.asarray(tf.convert_to_tensor(g)) for g in tape.gradient(loss, variables)]
    values = [conditioning] + layer.get_weights()

    def f(vals):
        return reference_log_prob(vals[0], frames, vals[1:]).sum()

    eps = 1e-6
    for k, (value, grad) in enumerate(zip(values, grads)):
        numeric = np.zeros_like(value)
        for index in np.ndindex(*value.shape):
            plus = [v.copy() for v in values]
            minus = [v.copy() for v in values]
            plus[k][index] += eps
            minus[k][index] -= eps
            numeric[index] = (f(plus) - f(minus)) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_sampling_frequencies_match_exact_probabilities():
    keys, n = 4, 20000
    layer = _layer(keys=keys, units=3, seed=4, scale=2.0)
    conditioning = np.random.default_rng(5).normal(size=(1, 4)).astype("float32")
    frames = _all_frames(keys)
    exact = np.exp(reference_log_prob(np.repeat(conditioning, 16, 0), frames, layer.get_weights()))
    samples = np.asarray(layer.sample(np.repeat(conditioning, n, 0), seed=7))
    assert set(np.unique(samples)) <= {0.0, 1.0}
    counts = np.bincount((samples @ (2 ** np.arange(keys)[::-1])).astype(int), minlength=16)
    expected = n * exact
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    # 15 degrees of freedom: P(chi2 > 40) is below 5e-4 for a correct sampler.
    assert chi2 < 40, (chi2, counts, expected.round())
    # A sampler that ignored the keys drawn before (independent keys with
    # the right marginals) is far off.
    marginal = np.array([[f[i] for i in range(keys)] for f in frames])
    p_on = (exact[:, None] * marginal).sum(0)
    independent = np.prod(np.where(marginal == 1, p_on, 1 - p_on), axis=1)
    assert np.sum((n * independent - expected) ** 2 / expected) > 200


def test_greedy_and_temperature():
    layer = _layer(keys=8, seed=6)
    conditioning = np.random.default_rng(8).normal(size=(5, 4)).astype("float32")
    greedy = np.asarray(layer.sample(conditioning, uniform=np.full((5, 8), 0.5)))
    expected = [reference_greedy(c, layer.get_weights()) for c in conditioning]
    np.testing.assert_array_equal(greedy, expected)
    cold = np.asarray(layer.sample(conditioning, temperature=1e-4, seed=1))
    np.testing.assert_array_equal(cold, expected)


def test_bad_arguments_are_refused():
    for units in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="units"):
            NADE(units)
    with pytest.raises(ValueError, match="two inputs"):
        NADE(4)(np.zeros((2, 3, 5), "float32"))
    with pytest.raises(ValueError, match="same number of axes"):
        NADE(4)([np.zeros((2, 3), "float32"), np.zeros((2, 1, 5), "float32")])
    layer = NADE(4)
    with pytest.raises(ValueError, match="built"):
        layer.sample(np.zeros((1, 3), "float32"))
    layer = _layer(keys=5)
    with pytest.raises(ValueError, match="temperature"):
        layer.sample(np.zeros((1, 4), "float32"), temperature=0)
    with pytest.raises(ValueError, match="uniform"):
        layer.sample(np.zeros((1, 4), "float32"), uniform=np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"\(batch, features\)"):
        layer.sample(np.zeros((1, 2, 4), "float32"))
    with pytest.raises(ValueError):
        layer([np.zeros((1, 4), "float32"), np.zeros((1, 6), "float32")])  # 6 keys, not 5


def test_export_refuses_a_nade_model(tmp_path):
    from keras_deeprnn.export import write_export

    model = build_model("gru", units=4, keys=6, output="nade", nade_units=3)
    with pytest.raises(ValueError, match="NADE output"):
        write_export(model, tmp_path / "export", "m")
    assert not (tmp_path / "export").exists()


def test_config_round_trip_and_safe_save(tmp_path):
    frames = keras.Input((None, 6))
    targets = keras.Input((None, 6))
    state = keras.layers.GRU(5, return_sequences=True)(frames)
    logits = NADE(7, kernel_regularizer="l2", name="nade")([state, targets])
    model = keras.Model([frames, targets], logits)
    layer = model.get_layer("nade")
    clone = NADE.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = (np.random.default_rng(0).random((2, 4, 6)) < 0.4).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded([x, x]), model([x, x]), atol=1e-6)


def _toy_data(n=24, t=10, keys=6, seed=0):
    """Each frame is the previous one rotated by one key: chords move together."""
    rng = np.random.default_rng(seed)
    first = (rng.random((n, 1, keys)) < 0.4).astype("float32")
    rolls = np.concatenate([np.roll(first, k, axis=-1) for k in range(t)], axis=1)
    weights = np.ones((n, t - 1), "float32")
    weights[: n // 2, -3:] = 0.0  # padding
    return tf.data.Dataset.from_tensor_slices((rolls[:, :-1], rolls[:, 1:], weights)).batch(8)


def test_music_model_with_nade_trains_and_scores_the_joint_nll():
    model = compile_model(build_model("gru", units=8, keys=6, output="nade", nade_units=8), 0.02)
    ds = feed(_toy_data(), model)
    before = model.evaluate(ds, verbose=0, return_dict=True)
    model.fit(ds, epochs=4, verbose=0)
    after = model.evaluate(ds, verbose=0, return_dict=True)
    assert after["nll"] < before["nll"] - 0.5
    # The reported NLL is the NumPy joint NLL of the real frames, given the
    # recurrent state.
    rnn = keras.Model(model.get_layer("frames").output, model.get_layer("nade").input[0])
    nade = model.get_layer("nade")
    total = count = 0.0
    for inputs, y, w in ds:
        log_p = reference_log_prob(
            np.asarray(rnn(inputs["frames"])), np.asarray(y), nade.get_weights()
        )
        total += float(np.sum(-log_p * np.asarray(w)))
        count += float(np.sum(w))
    assert after["nll"] == pytest.approx(total / count, rel=1e-4)


@pytest.mark.parametrize("arch,cell", [("rnn", "lstm"), ("dots", "gru"), ("srnn", "rnn")])
def test_stepping_gives_the_conditioning_of_the_full_sequence(arch, cell):
    depth = None if arch == "rnn" else 2
    model = build_model(
        cell, arch, units=6, depth=depth, keys=6, output="nade", nade_units=5, input_dropout=0.1
    )
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    x = (rng.random((2, 7, 6)) < 0.3).astype("float32")
    y = (rng.random((2, 7, 6)) < 0.3).astype("float32")
    full = np.asarray(model({"frames": x, "targets": y}))
    stepper = generate.FrameStepper(model)
    assert stepper.nade is model.get_layer("nade") and stepper.keys == 6
    states = stepper.initial_state(2)
    for t in range(7):
        conditioning, states = stepper.step(x[:, t], states)
        logits = np.asarray(stepper.nade([conditioning, y[:, t]]))
        np.testing.assert_allclose(logits, full[:, t], atol=1e-5)


def test_generation_with_nade_samples_and_beam_searches():
    model = build_model("gru", units=8, keys=6, output="nade", nade_units=5)
    rng = np.random.default_rng(2)
    model.set_weights([rng.normal(0, 0.7, w.shape).astype("float32") for w in model.get_weights()])
    primer = np.eye(6, dtype="float32")[:2]
    roll = generate.sample(model, 8, primer=primer, temperature=0.8, seed=3)
    assert roll.shape == (10, 6) and set(np.unique(roll)) <= {0.0, 1.0}
    np.testing.assert_array_equal(roll[:2], primer)
    np.testing.assert_array_equal(roll, generate.sample(model, 8, primer, 0.8, seed=3))

    stepper = generate.FrameStepper(model)

    def log_likelihood(frames):
        conditioning, states = generate._prime(stepper, None, 1)
        total = 0.0
        for frame in frames:
            total += float(
                reference_log_prob(conditioning, frame[None], stepper.nade.get_weights())[0]
            )
            conditioning, states = stepper.step(frame[None], states)
        return total

    beam = generate.beam_search(model, 6, beam_width=4, candidates=6, seed=0)
    greedy = generate.beam_search(model, 6, beam_width=1, candidates=1, seed=0)
    assert beam.shape == greedy.shape == (6, 6)
    assert log_likelihood(beam) >= log_likelihood(greedy) - 1e-4


def test_cli_train_evaluate_generate_and_export_refusal(tiny_train_argv, tmp_path, capsys):
    pytest.importorskip("pretty_midi")
    argv = tiny_train_argv + ["--output", "nade", "--nade-units", "6"]
    assert main(argv) == 0
    saved = tmp_path / "saved" / "music-n"
    meta = json.loads((saved / "metadata.json").read_text())
    assert meta["arguments"]["output"] == "nade" and "RNN-NADE" in meta["metric"]
    # Untrained on random frames: near 88 log 2 = 61 nats, and finite.
    assert 30 < meta["metrics"]["test_nll"] < 90
    data = tiny_train_argv[tiny_train_argv.index("--data") + 1]
    capsys.readouterr()
    assert main(["evaluate", str(saved), "--data", data]) == 0
    reported = float(capsys.readouterr().out.split(":")[1].split()[0])
    assert reported == pytest.approx(meta["metrics"]["test_nll"], rel=1e-4)
    out = tmp_path / "gen" / "g"  # (beam search: test_generation_with_nade_...)
    assert main(["generate", str(saved), "--frames", "5", "--out", str(out)]) == 0
    assert out.with_suffix(".mid").is_file() and out.with_suffix(".png").is_file()
    capsys.readouterr()
    assert main(["export", str(saved), "--data", data]) == 2
    assert "RNN-NADE" in capsys.readouterr().err
    assert not (saved / "export").exists()
