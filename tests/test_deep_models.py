"""`deep_rnn`, `count_params`, `size_to_budget`, and the deep layers inside
Keras: parameter counts, `.keras` round trips, masking, Bidirectional,
return_state, dropout, configs."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_deeprnn import cells
from keras_deeprnn.layers import DeepOutput
from keras_deeprnn.layers import DeepTransitionCell
from keras_deeprnn.layers import DeepTransitionGRUCell
from keras_deeprnn.layers import DeepTransitionLSTMCell
from keras_deeprnn.layers import StackedCells
from keras_deeprnn.models import KINDS
from keras_deeprnn.models import count_params
from keras_deeprnn.models import deep_rnn
from keras_deeprnn.models import size_to_budget

D, U, O = 3, 4, 2

# One representative configuration per architecture (and its options).
ARCHITECTURES = {
    "rnn": dict(kind="rnn"),
    "rnn-skip": dict(kind="rnn", time_skip=3),
    "dt": dict(kind="dt", depth=3, unit_type="relu"),
    "dts-lp-skip": dict(kind="dts", depth=3, widths=[5, 3], unit_type="lp", time_skip=2),
    "dot-maxout": dict(kind="dot", depth=2, unit_type="maxout", output_depth=3),
    "dots-lp": dict(
        kind="dots", depth=2, unit_type="lp", output_unit_type="maxout", output_activation="sigmoid"
    ),
    "dt-lstm": dict(kind="dt", cell="lstm-vanilla", unit_type="lp"),
    "dots-gru": dict(kind="dots", cell="gru", unit_type="maxout"),
    "srnn": dict(kind="srnn", depth=3, input_skip=True, output_skip=True),
    "srnn-lstm-residual": dict(kind="srnn", cell="lstm", depth=2, residual=True),
}
ARCH_IDS = sorted(ARCHITECTURES)


def inputs(seed=0, batch=3, steps=10):
    return np.random.default_rng(seed).normal(size=(batch, steps, D)).astype("float32")


def randomize(model, seed=1):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.uniform(-0.5, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()]
    )


def model_for(name, output=True, **overrides):
    options = {**ARCHITECTURES[name], **overrides}
    kind = options.pop("kind")
    if output:
        options.setdefault("output_units", O)
    layers = deep_rnn(kind, units=U, **options)
    model = keras.Sequential([keras.Input((None, D)), *layers])
    randomize(model)
    return model, layers


# ---------------------------------------------------------------------------
# Parameter counts and budgets
# ---------------------------------------------------------------------------
def _count_cases(kind):
    cell_names = ["rnn", "lstm", "lstm-vanilla", "lstm-cifg", "lstm-nig", "lstm-fgr", "gru"]
    if kind in ("rnn", "srnn"):
        cell_names += ["mut1", "mut2", "mut3"]
    extras = [
        {},
        {"unit_type": "maxout", "maxout_pieces": 3, "cell_kwargs": {"use_bias": False}},
        {"unit_type": "lp", "lp_group": 3},
    ]
    return [(cell, extra) for cell in cell_names for extra in extras]


def _count_options(kind, cell, extra):
    options = {"cell": cell, **extra}
    if kind in ("dt", "dts", "dot", "dots"):
        options.update(depth=3, widths=[5, 2])
    if kind in ("dot", "dots"):
        options.update(
            output_depth=3,
            output_widths=[6, 3],
            output_unit_type="lp",
            output_kwargs={"lp_group": 2},
        )
    if kind == "srnn":
        options.update(depth=3, input_skip=True, output_skip=True)
    if cell == "rnn" and kind != "srnn":
        options["time_skip"] = 2
    if cell == "gru" and "cell_kwargs" in extra:
        options["cell_kwargs"] = {"use_bias": False, "reset_after": False}
        options.pop("widths", None)
        options["unit_type"] = "relu"
        if kind in ("dts", "dots"):
            return None  # reset_after=False has no shortcut
        if kind in ("dt", "dot"):
            options["widths"] = [5, U]
    return options


@pytest.mark.parametrize("kind", KINDS)
def test_count_params_matches_keras(kind):
    checked = 0
    for cell, extra in _count_cases(kind):
        options = _count_options(kind, cell, extra)
        if options is None:
            continue  # reset_after=False with a shortcut is refused (tested elsewhere)
        for input_dim in (D, U) if cell.startswith("mut") else (D,):  # MUT: d == u differs
            layers = deep_rnn(kind, units=U, output_units=O, **options)
            model = keras.Sequential([keras.Input((None, input_dim)), *layers])
            want = count_params(kind, input_dim=input_dim, units=U, output_dim=O, **options)
            assert want == model.count_params(), (cell, options, input_dim)
            checked += 1
    assert checked >= 20


def test_count_params_without_output_layer():
    layers = deep_rnn("dts", units=5, depth=3, unit_type="maxout")
    model = keras.Sequential([keras.Input((None, 7)), *layers])
    assert (
        count_params("dts", input_dim=7, units=5, depth=3, unit_type="maxout")
        == model.count_params()
    )
    # The docstring example.
    assert count_params("dt", input_dim=3, units=4, depth=2) == 52


@pytest.mark.parametrize(
    "kind,options",
    [
        ("rnn", {}),
        ("dt", {"depth": 3, "unit_type": "maxout"}),
        ("dts", {"depth": 2, "unit_type": "lp", "cell": "lstm"}),
        ("dot", {"output_depth": 3}),
        ("dots", {"cell": "gru", "unit_type": "lp"}),
        ("srnn", {"depth": 4, "input_skip": True, "output_skip": True}),
    ],
)
@pytest.mark.parametrize("budget", [50_000, 200_000])
def test_size_to_budget_lands_near_the_budget(kind, options, budget):
    units = size_to_budget(kind, budget, input_dim=20, output_dim=10, **options)
    count = count_params(kind, input_dim=20, units=units, output_dim=10, **options)
    assert abs(count - budget) <= 0.03 * budget, (units, count)
    # ... and it is the best choice of units.
    for other in (units - 1, units + 1):
        if other >= 1:
            assert abs(
                count_params(kind, input_dim=20, units=other, output_dim=10, **options) - budget
            ) >= abs(count - budget)
    model = keras.Sequential(
        [keras.Input((None, 20)), *deep_rnn(kind, units=units, output_units=10, **options)]
    )
    assert model.count_params() == count


def test_equal_budget_gives_comparable_sizes():
    counts = {
        kind: count_params(
            kind, input_dim=88, output_dim=88, units=size_to_budget(kind, 100_000, 88, 88)
        )
        for kind in KINDS
    }
    assert max(counts.values()) / min(counts.values()) < 1.03, counts


# ---------------------------------------------------------------------------
# Builder output
# ---------------------------------------------------------------------------
def test_builder_layer_types():
    rnn, out = deep_rnn("dots", units=4, output_units=2, cell="lstm-cifg", name="m")
    assert isinstance(rnn, keras.layers.RNN) and rnn.name == "m_rnn"
    assert isinstance(rnn.cell, DeepTransitionLSTMCell)
    assert rnn.cell.variant == "cifg" and rnn.cell.shortcut and rnn.cell.depth == 2
    assert isinstance(out, DeepOutput) and out.depth == 2 and out.name == "m_output"
    (rnn,) = deep_rnn("dt", units=4, cell="gru", depth=3)
    assert isinstance(rnn.cell, DeepTransitionGRUCell) and not rnn.cell.shortcut
    (rnn,) = deep_rnn("rnn", units=4, cell="gru")
    assert type(rnn.cell) is cells.GRUCell
    (rnn,) = deep_rnn("rnn", units=4)
    assert isinstance(rnn.cell, DeepTransitionCell) and rnn.cell.depth == 1
    rnn, out = deep_rnn("srnn", units=4, cell="mut2", depth=3, output_units=1)
    assert isinstance(rnn.cell, StackedCells) and len(rnn.cell.cells) == 3
    assert all(type(c) is cells.MUT2Cell for c in rnn.cell.cells)
    assert out.depth == 1


@pytest.mark.parametrize("name", ["rnn-skip", "dts-lp-skip", "dots-gru", "srnn"])
def test_sequences_in_and_out(name):
    x = inputs()
    model, _ = model_for(name)
    assert model(x).shape == (3, 10, O)
    last, layers = model_for(name, return_sequences=False)
    last.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(last(x)), np.asarray(model(x))[:, -1], atol=1e-6)


# ---------------------------------------------------------------------------
# Saving, masking, Bidirectional, states
# ---------------------------------------------------------------------------
LOADER = r"""
import json, sys
import numpy as np
import keras
import keras_deeprnn  # registers the layers
paths = json.loads(sys.argv[1])
x = np.load(sys.argv[2])
np.savez(sys.argv[3], **{name: np.asarray(keras.models.load_model(path, safe_mode=True)(x))
                          for name, path in paths.items()})
"""


def test_keras_files_round_trip(tmp_path):
    x = inputs()
    paths, want = {}, {}
    for name in ARCH_IDS:
        model, _ = model_for(name)
        want[name] = np.asarray(model(x))
        paths[name] = str(tmp_path / f"{name}.keras")
        model.save(paths[name])
        loaded = keras.models.load_model(paths[name], safe_mode=True)
        np.testing.assert_array_equal(np.asarray(loaded(x)), want[name])
        assert [w.name for w in loaded.weights] == [w.name for w in model.weights]
    # In a fresh process, `import keras_deeprnn` alone registers everything.
    np.save(tmp_path / "x.npy", x)
    subprocess.run(
        [
            sys.executable,
            "-c",
            LOADER,
            json.dumps(paths),
            str(tmp_path / "x.npy"),
            str(tmp_path / "out.npz"),
        ],
        check=True,
        capture_output=True,
    )
    got = np.load(tmp_path / "out.npz")
    for name in ARCH_IDS:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("name", ARCH_IDS)
def test_masked_batch_matches_sequences_alone(name):
    lengths = [10, 6, 3]
    x = inputs()
    mask = np.arange(10)[None, :] < np.array(lengths)[:, None]
    padded = np.where(mask[..., None], x, 0.0).astype("float32")
    model, (rnn, out) = model_for(name)
    seq = np.asarray(out(rnn(padded, mask=mask)))
    # Through a Masking layer too, inside a model.
    masked = keras.Sequential([keras.Input((None, D)), keras.layers.Masking(0.0), rnn, out])
    np.testing.assert_allclose(np.asarray(masked(padded)), seq, atol=1e-6)
    states_layer = keras.layers.RNN(rnn.cell, return_sequences=True, return_state=True)
    _, *states = states_layer(padded, mask=mask)
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(seq[b, :n], np.asarray(model(x[b : b + 1, :n]))[0], atol=1e-5)
        _, *alone = states_layer(x[b : b + 1, :n])
        for s, a in zip(states, alone):
            np.testing.assert_allclose(np.asarray(s)[b], np.asarray(a)[0], atol=1e-5)


@pytest.mark.parametrize("name", ["dts-lp-skip", "dot-maxout", "dt-lstm", "srnn"])
def test_bidirectional_halves(name):
    x = inputs()
    _, (rnn, _) = model_for(name)
    bi = keras.layers.Bidirectional(rnn)
    out = np.asarray(bi(x))
    width = rnn.cell.output_size
    assert out.shape == (3, 10, 2 * width)
    randomize(bi)
    out = np.asarray(bi(x))
    forward = type(rnn).from_config(rnn.get_config())
    forward(x)
    forward.set_weights(bi.forward_layer.get_weights())
    np.testing.assert_allclose(out[..., :width], np.asarray(forward(x)), atol=1e-6)
    forward.set_weights(bi.backward_layer.get_weights())
    np.testing.assert_allclose(
        out[..., width:], np.asarray(forward(x[:, ::-1]))[:, ::-1], atol=1e-6
    )


def test_return_state_and_time_skip_history():
    x = inputs()
    (rnn,) = deep_rnn("dt", units=U, time_skip=3, return_state=True)
    seq, h, history = (np.asarray(t) for t in rnn(x))
    assert history.shape == (3, 3 * U)
    np.testing.assert_allclose(h, seq[:, -1], atol=1e-6)
    # The history holds the last d outputs, oldest first.
    np.testing.assert_allclose(history, seq[:, -3:].reshape(3, 3 * U), atol=1e-6)
    (stack,) = deep_rnn("srnn", units=U, cell="lstm", depth=2, output_skip=True, return_state=True)
    seq, *states = stack(x)
    assert len(states) == 4  # [h1, c1, h2, c2]
    np.testing.assert_allclose(np.asarray(states[0]), np.asarray(seq)[:, -1, :U], atol=1e-6)
    np.testing.assert_allclose(np.asarray(states[2]), np.asarray(seq)[:, -1, U:], atol=1e-6)


def test_stateful_deep_transition_carries_history():
    x = inputs(batch=2)
    (whole,) = deep_rnn("dts", units=U, time_skip=4)
    want = np.asarray(whole(x))
    stateful = keras.layers.RNN(whole.cell, return_sequences=True, stateful=True)
    got = np.concatenate([np.asarray(stateful(x[:, :5])), np.asarray(stateful(x[:, 5:]))], 1)
    np.testing.assert_allclose(got, want, atol=1e-5)


# ---------------------------------------------------------------------------
# Dropout and training
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind,cell", [("dts", "rnn"), ("dt", "lstm"), ("srnn", "gru")])
def test_dropout_only_in_training(kind, cell):
    x = inputs()
    plain = keras.Sequential(
        [keras.Input((None, D)), *deep_rnn(kind, units=U, cell=cell, output_units=O)]
    )
    randomize(plain)
    dropped = keras.Sequential(
        [
            keras.Input((None, D)),
            *deep_rnn(
                kind,
                units=U,
                cell=cell,
                output_units=O,
                cell_kwargs={"dropout": 0.3, "recurrent_dropout": 0.3, "seed": 1},
            ),
        ]
    )
    dropped.set_weights(plain.get_weights())
    np.testing.assert_allclose(
        np.asarray(dropped(x, training=False)), np.asarray(plain(x)), atol=1e-6
    )
    assert not np.allclose(np.asarray(dropped(x, training=True)), np.asarray(plain(x)), atol=1e-3)


def test_stacked_cells_create_their_cells_dropout_masks_up_front():
    """Keras's RNN asks the stack once per sequence, before its loop."""
    stack = StackedCells(
        [
            DeepTransitionCell(4, dropout=0.5, recurrent_dropout=0.5),
            cells.LSTMCell(5, dropout=0.5, recurrent_dropout=0.5),
        ],
        input_skip=True,
    )
    keras.layers.RNN(stack)(inputs(batch=2))
    stack.get_dropout_mask(np.zeros((2, D), "float32"))
    shapes = [
        (tuple(c._dropout_mask.shape), tuple(c._recurrent_dropout_mask.shape)) for c in stack.cells
    ]
    assert shapes == [((2, D), (2, 4)), ((2, D + 4), (2, 5))]
    stack.reset_dropout_mask()
    assert all(c._dropout_mask is None and c._recurrent_dropout_mask is None for c in stack.cells)


def test_stacked_dropout_in_graph_mode():
    """In a traced step, the cells' masks must not leak out of the loop."""
    import tensorflow as tf

    x = inputs()
    model = keras.Sequential(
        [
            keras.Input((None, D)),
            *deep_rnn(
                "srnn",
                units=U,
                cell="lstm",
                input_skip=True,
                output_units=O,
                cell_kwargs={"dropout": 0.3, "recurrent_dropout": 0.3, "seed": 1},
            ),
        ]
    )
    train_step = tf.function(lambda inputs: model(inputs, training=True))
    first, second = np.asarray(train_step(x)), np.asarray(train_step(x))
    assert np.all(np.isfinite(first)) and not np.allclose(first, second)
    inference = np.asarray(model(x))  # eager, after the traced calls
    assert not np.allclose(first, inference, atol=1e-3)
    np.testing.assert_allclose(np.asarray(tf.function(model)(x)), inference, atol=1e-6)


def test_mixed_precision_lp_units():
    """Lp units compute in float32: in float16, eps^2 = 1e-12 would underflow
    and an all-zero group would give 0 / 0."""
    keras.config.set_dtype_policy("mixed_float16")
    layer = DeepOutput(2, depth=3, unit_type="lp")
    out = layer(np.zeros((2, 5, 3), "float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert np.all(np.isfinite(np.asarray(out, "float32")))
    model = keras.Sequential(
        [keras.Input((None, D)), *deep_rnn("dots", units=U, unit_type="lp", output_units=O)]
    )
    out = np.asarray(model(inputs()), "float32")
    assert np.all(np.isfinite(out)) and np.std(out) > 0


# ---------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------
CONFIG_OBJECTS = [
    lambda: DeepTransitionCell(
        5,
        depth=3,
        widths=[2, 7],
        unit_type="lp",
        lp_group=3,
        lp_epsilon=1e-5,
        lp_p_init=3.0,
        shortcut=True,
        time_skip=2,
        dropout=0.1,
        use_bias=False,
    ),
    lambda: DeepTransitionLSTMCell(
        5, depth=2, unit_type="maxout", maxout_pieces=4, variant="fgr", forget_bias=2.0
    ),
    lambda: DeepTransitionGRUCell(5, depth=3, widths=[3, 5], reset_after=False),
    lambda: DeepOutput(3, depth=3, widths=4, unit_type="relu", activation="softmax"),
    lambda: DeepOutput(3),
    lambda: StackedCells(
        [DeepTransitionCell(4, depth=2), cells.LSTMCell(4, variant="nig"), keras.layers.GRUCell(4)],
        input_skip=True,
        residual=True,
    ),
]


@pytest.mark.parametrize("make", CONFIG_OBJECTS, ids=lambda f: "")
def test_get_config_round_trip(make):
    obj = make()
    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(restored) is type(obj) and restored.get_config() == config
    json.dumps(keras.saving.serialize_keras_object(obj))
