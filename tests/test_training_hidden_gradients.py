"""HiddenGradientLogger: ||dL_T/dh_t|| against T - t, checked by hand."""

import glob

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deeprnn.cells import SimpleRNNCell
from keras_deeprnn.training import HiddenGradientLogger

B, T, D, P, U, O = 3, 12, 2, 4, 5, 2


def _model(activation, return_sequences=True, recurrent_scale=1.0):
    model = keras.Sequential(
        [
            keras.Input((T, D)),
            keras.layers.Dense(P, name="before"),
            keras.layers.RNN(
                SimpleRNNCell(U, activation=activation),
                return_sequences=return_sequences,
                name="rnn",
            ),
            keras.layers.Dense(O, name="after"),
        ]
    )
    rnn = model.get_layer("rnn").cell
    rnn.recurrent_kernel.assign(rnn.recurrent_kernel.numpy() * recurrent_scale)
    model.compile("sgd", "mse")
    return model


def _reference(model, x, y, activation):
    """Hand-written BPTT of L = mean((h_T V + c - y_T)^2) to every h_t."""
    wp, bp, w, u, b, v, c = model.get_weights()
    a = x @ wp + bp
    h, hs = np.zeros((B, U)), []
    for t in range(T):
        h = a[:, t] @ w + h @ u + b
        h = np.tanh(h) if activation == "tanh" else h
        hs.append(h)
    target = y[:, -1] if y.ndim == 3 else y
    g = 2.0 * (hs[-1] @ v + c - target) @ v.T / target.size
    norms = []
    for t in reversed(range(T)):
        norms.append(np.linalg.norm(g))
        if activation == "tanh":
            g = g * (1.0 - hs[t] ** 2)
        g = g @ u.T
    return np.array(norms)


@pytest.mark.parametrize("activation", ["linear", "tanh"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_norms_match_hand_written_bptt(activation, return_sequences):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D)).astype("float32")
    y = rng.normal(size=(B, T, O) if return_sequences else (B, O)).astype("float32")
    model = _model(activation, return_sequences, recurrent_scale=1.5)
    probe = HiddenGradientLogger((x, y))
    probe.set_model(model)
    norms = probe.norms()
    expected = _reference(model, x, y, activation)
    np.testing.assert_allclose(norms, expected, rtol=2e-4)
    assert norms.shape == (T,) and norms[-1] != pytest.approx(norms[0], rel=0.1)


def test_a_scaled_identity_recurrence_scales_the_norm_geometrically():
    # h_t = h_{t-1} (a I) + ...: dL/dh_{T-d} = a^d dL/dh_T exactly.
    model = _model("linear")
    model.get_layer("rnn").cell.recurrent_kernel.assign(0.8 * np.eye(U))
    x, y = np.ones((B, T, D), "float32"), np.zeros((B, T, O), "float32")
    probe = HiddenGradientLogger((x, y), layer="rnn")
    probe.set_model(model)
    norms = probe.norms()
    np.testing.assert_allclose(norms, norms[0] * 0.8 ** np.arange(T), rtol=1e-4)


def _events(folder):
    values = {}
    for path in glob.glob(f"{folder}/events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values.setdefault(value.tag, {})[event.step] = tf.make_ndarray(value.tensor)
    return values


def test_logs_the_curve_the_ratio_and_an_image_to_tensorboard(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, D)).astype("float32")
    y = rng.normal(size=(B, T, O)).astype("float32")
    model = _model("tanh")
    probe = HiddenGradientLogger((x, y), log_dir=str(tmp_path), every=2)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[probe])
    expected = _reference(model, x, y, "tanh")

    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["epoch_0001"]
    curve = _events(tmp_path / "epoch_0001")["dL_dh_norm"]
    np.testing.assert_allclose([curve[d] for d in range(T)], expected, rtol=2e-4)
    main = _events(tmp_path)
    ratio = main["dL_dh_norm/log10_ratio"][1]
    assert ratio == pytest.approx(np.log10(expected[-1] / expected[0]), rel=1e-4)
    image = main["dL_dh_norm"][1]  # [width, height, encoded PNG]
    assert image[2].startswith(b"\x89PNG")


def test_bad_arguments_and_models_are_refused():
    x, y = np.ones((1, T, D), "float32"), np.ones((1, T, O), "float32")
    with pytest.raises(ValueError, match="`batch` must be"):
        HiddenGradientLogger(x)
    with pytest.raises(ValueError, match="`every` must be"):
        HiddenGradientLogger((x, y), every=0)
    inputs = keras.Input((T, D))
    functional = keras.Model(inputs, keras.layers.SimpleRNN(O, return_sequences=True)(inputs))
    dense_only = keras.Sequential([keras.Input((T, D)), keras.layers.Dense(O)])
    backwards = keras.Sequential(
        [keras.Input((T, D)), keras.layers.SimpleRNN(O, return_sequences=True, go_backwards=True)]
    )
    for model, kwargs, message in [
        (functional, {}, "needs a keras.Sequential model"),
        (dense_only, {}, "has no keras.layers.RNN layer"),
        (_model("tanh"), {"layer": "after"}, "must be a keras.layers.RNN of the model"),
        (backwards, {}, "go_backwards"),
    ]:
        probe = HiddenGradientLogger((x, y), **kwargs)
        probe.set_model(model)
        with pytest.raises(ValueError, match=message):
            probe.norms()
