"""Bad configurations of the deep RNN layers and builder fail at
construction with a ValueError that names the argument."""

import re

import keras
import numpy as np
import pytest

from keras_deeprnn.cells import LSTMCell
from keras_deeprnn.layers import DeepOutput
from keras_deeprnn.layers import DeepTransitionCell
from keras_deeprnn.layers import DeepTransitionGRUCell
from keras_deeprnn.layers import DeepTransitionLSTMCell
from keras_deeprnn.layers import StackedCells
from keras_deeprnn.models import count_params
from keras_deeprnn.models import deep_rnn
from keras_deeprnn.models import size_to_budget

DEEP_CELLS = [DeepTransitionCell, DeepTransitionLSTMCell, DeepTransitionGRUCell, DeepOutput]


def expect_error(pattern, make, *args, **kwargs):
    """make(*args, **kwargs) raises a ValueError whose message matches."""
    try:
        make(*args, **kwargs)
    except ValueError as error:
        assert re.search(pattern, str(error)), (pattern, str(error), args, kwargs)
        return
    pytest.fail(f"no ValueError from {getattr(make, '__name__', make)}{args} {kwargs}")


BAD_ARGUMENTS = [
    ({"depth": 0}, r"`depth` must be an integer >= 1"),
    ({"depth": 2.0}, "`depth`"),
    ({"depth": True}, "`depth`"),
    ({"unit_type": "sigmoidal"}, r"`unit_type`='sigmoidal'.*'tanh'.*'maxout'.*'lp'"),
    ({"unit_type": "maxout", "maxout_pieces": 1}, r"`maxout_pieces` must be an integer >= 2"),
    ({"lp_group": 0}, "`lp_group`"),
    ({"lp_epsilon": 0.0}, "`lp_epsilon` must be a positive float"),
    ({"lp_epsilon": float("nan")}, "`lp_epsilon`"),
    ({"lp_p_init": 1.0}, r"`lp_p_init` must be > 1"),
    ({"depth": 3, "widths": [4]}, r"`widths` must list 2 width"),
    ({"depth": 3, "widths": [4, 0]}, r"`widths` must hold positive integers, got \[4, 0\]"),
    ({"depth": 2, "widths": "4"}, "`widths`"),
    ({"units": 0}, "`units`"),
]


@pytest.mark.parametrize("cls", DEEP_CELLS, ids=lambda c: c.__name__)
def test_bad_arguments(cls):
    for kwargs, pattern in BAD_ARGUMENTS:
        expect_error(pattern, cls, **{"units": 4, **kwargs})


@pytest.mark.parametrize("cls", DEEP_CELLS[:3], ids=lambda c: c.__name__)
def test_shortcut_needs_a_deep_transition(cls):
    with pytest.raises(ValueError, match=r"`shortcut=True` needs `depth` >= 2"):
        cls(4, depth=1, shortcut=True)
    with pytest.raises(ValueError, match="`shortcut` must be True or False"):
        cls(4, shortcut="yes")


def test_time_skip():
    for time_skip in (1, -2, 2.5, True, "3"):
        expect_error(
            r"`time_skip` must be an integer >= 2 \(or 0",
            DeepTransitionCell,
            4,
            time_skip=time_skip,
        )


def test_gru_reset_before_needs_units_wide_recurrent_input():
    with pytest.raises(ValueError, match="reset_after=False.*widths"):
        DeepTransitionGRUCell(4, depth=2, widths=[3], reset_after=False)
    with pytest.raises(ValueError, match="reset_after=False.*shortcut"):
        DeepTransitionGRUCell(4, depth=2, shortcut=True, reset_after=False)
    DeepTransitionGRUCell(4, depth=3, widths=[7, 4], reset_after=False)


def test_lstm_variant_is_still_checked():
    with pytest.raises(ValueError, match="variant"):
        DeepTransitionLSTMCell(4, variant="fancy")


def test_stacked_cells_arguments():
    with pytest.raises(ValueError, match="`cells` must be a non-empty list"):
        StackedCells([])
    with pytest.raises(ValueError, match=r"`cells` must hold RNN cells.*cells\[1\]"):
        StackedCells([LSTMCell(4), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"`residual=True`.*\[4, 5\]"):
        StackedCells([LSTMCell(4), LSTMCell(5)], residual=True)
    with pytest.raises(ValueError, match="`input_skip`"):
        StackedCells([LSTMCell(4)], input_skip=1)


def test_wrong_feature_width_is_a_clear_error():
    layer = keras.layers.RNN(DeepTransitionCell(4, depth=2))
    layer(np.zeros((2, 5, 3), "float32"))
    with pytest.raises(ValueError, match="built for 3 input features"):
        layer(np.zeros((2, 5, 6), "float32"))
    output = DeepOutput(2)
    output(np.zeros((2, 5, 3), "float32"))
    with pytest.raises(ValueError):
        output(np.zeros((2, 5, 6), "float32"))


# ---------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------
BUILDER_CASES = [
    ("deep", {}, r"`kind`='deep'.*'rnn'.*'dts'.*'srnn'"),
    ("dt", {"cell": "lstn"}, r"`cell`='lstn'.*'gru'"),
    ("dt", {"cell": "mut1"}, r"`cell`='mut1' has no deep transition"),
    ("dt", {"unit_type": "softmax"}, "`unit_type`='softmax'"),
    ("dot", {"output_units": 2, "output_unit_type": "x"}, "`output_unit_type`='x'"),
    ("dt", {"depth": 0}, "`depth` must be an integer >= 1"),
    ("srnn", {"depth": -1}, "`depth`"),
    ("rnn", {"depth": 2}, r"`depth` must be 1 \(or None\) for kind='rnn'"),
    ("dt", {"depth": 3, "widths": [4, 4, 4]}, "`widths` must list 2"),
    ("srnn", {"widths": [4]}, r"`widths` .* kind='srnn' has none"),
    ("dt", {"time_skip": 1}, "`time_skip`"),
    ("dt", {"cell": "lstm", "time_skip": 2}, r"`time_skip`.*needs cell='rnn'"),
    ("dt", {"input_skip": True}, r"`input_skip` applies to kind='srnn' only"),
    ("rnn", {"output_skip": True}, "`output_skip`"),
    ("dots", {"residual": True}, "`residual`"),
    ("srnn", {"residual": "yes"}, "`residual` must be True or False"),
    ("dot", {}, "`output_units` is required"),
    ("dt", {"output_units": 0}, "`output_units` must be an integer >= 1"),
    ("dt", {"output_units": 2, "output_depth": 2}, r"`output_depth`.*kind='dot'"),
    ("dot", {"output_units": 2, "output_depth": 1}, "`output_depth` must be an integer >= 2"),
    ("dot", {"output_units": 2, "output_widths": [1, 2]}, "`output_widths` must list 1"),
    ("dt", {"cell_kwargs": {"depth": 3}}, r"`cell_kwargs` may not set \['depth'\]"),
    ("dt", {"cell_kwargs": [("dropout", 0.1)]}, "`cell_kwargs` must be a dict"),
    ("dt", {"cell": "lstm-cifg", "cell_kwargs": {"variant": "np"}}, "`cell_kwargs` sets a variant"),
    (
        "dot",
        {"output_units": 2, "output_kwargs": {"activation": "relu"}},
        "`output_kwargs` may not set",
    ),
    ("dt", {"output_kwargs": {"use_bias": False}}, "`output_kwargs` needs `output_units`"),
    ("dt", {"units": 0}, "`units`"),
    ("dt", {"maxout_pieces": 1}, "`maxout_pieces`"),
    ("dts", {"depth": 1}, r"`depth` must be >= 2 for kind='dts'"),
    (
        "dt",
        {"cell": "gru", "widths": [3], "cell_kwargs": {"reset_after": False}},
        "reset_after=False",
    ),
    ("srnn", {"cell_kwargs": {"dropout": 1.5}}, "`dropout`"),
    ("dot", {"output_units": 2, "output_kwargs": {"use_bias": False, "lp_group": 0}}, "`lp_group`"),
]


def test_builder_bad_arguments():
    for kind, bad, pattern in BUILDER_CASES:
        kwargs = {"units": 4, **bad}
        expect_error(pattern, deep_rnn, kind, **kwargs)
        output_dim = kwargs.pop("output_units", None)
        expect_error(pattern, count_params, kind, input_dim=3, output_dim=output_dim, **kwargs)
        if "units" not in bad:  # size_to_budget chooses the units
            del kwargs["units"]
            expect_error(pattern, size_to_budget, kind, 1000, 3, output_dim, **kwargs)


def test_builder_refuses_return_state_with_an_output_layer():
    with pytest.raises(ValueError, match="`return_state=True`"):
        deep_rnn("dt", units=4, output_units=2, return_state=True)


def test_sizing_arguments():
    with pytest.raises(ValueError, match="`budget`"):
        size_to_budget("dt", 0, input_dim=3, output_dim=2)
    with pytest.raises(ValueError, match="`input_dim`"):
        count_params("dt", input_dim=0, units=4)
    with pytest.raises(ValueError, match="`kind`"):
        size_to_budget("lstm", 1000, input_dim=3, output_dim=2)
