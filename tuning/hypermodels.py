"""KerasTuner hypermodels of the three apps: thin layers over their model
builders (`apps.music.model.build_model`, `apps.sentiment.model.build_classifier`,
`apps.tagging.model.build_model`) and compile functions.

The search space is the same for every app (names as in KerasTuner's
`HyperParameters`, so they are the columns of TensorBoard's hparams view):

| name | values | active when |
|---|---|---|
| `cell` | every name of `keras_deeprnn.cells.CELL_NAMES` (the RNN, the LSTM and each of its variants, the GRU, MUT1-3) | always |
| `arch` | the app's architectures of `keras_deeprnn.models.deep_rnn` (rnn, dt, dts, dot, dots, srnn; the tagger has no dot/dots) | always |
| `depth` | 2 .. `max_depth`: transition layers (dt kinds) or stacked layers (srnn) | `arch` is not rnn |
| `unit_type` | tanh, relu, maxout, lp (Pascanu et al.'s L_p units): the intermediate layers of a deep transition or output | `arch` is dt, dts, dot or dots |
| `units` | `units` range, log-uniform | always |
| `dropout` | 0 .. 0.7, on the recurrent layers' outputs | always |
| `recurrent_dropout` | 0 .. 0.7, on the state inside the cells (one mask per sequence) | always |
| `learning_rate` | 1e-4 .. 3e-2, log-uniform (Adam) | always |
| `lr_schedule` | constant, cosine (from `learning_rate` down to a tenth of it over the trial's epochs, set at each epoch's start; with a `TimeBudget` among the trial's callbacks, over its budget by the wall clock, after each batch) | always |
| `clipnorm` | 0.1 .. 10, log-uniform (gradient norm clipping) | always |
| `weight_noise` | 0, 0.025, 0.05, 0.075, 0.1, 0.15: std of the Gaussian noise on the weight matrices, one sample per minibatch (`keras_deeprnn.training.WeightNoise`; 0.075 is Pascanu et al.'s) | always |
| `forget_bias` | 0 .. 3, added to the initial forget-gate bias | `cell` is an LSTM with a forget gate |
| `input_dropout` | 0 .. 0.3, on the input frames (music only) | always |

MUT1-3 have no deep-transition form: a trial drawing one of them with a
dt/dts/dot/dots architecture fails at once with `FailedTrialError` (no
training is spent on it) and the search goes on. `fixed` pins any of the
names to one value (`hp.Fixed`); with `cell` pinned to a MUT cell the
architectures are cut to rnn and srnn, and with `arch` pinned to a deep
transition the cells are cut to those that have one.

`fit` adds `keras.callbacks.TerminateOnNaN`; a trial whose training loss
becomes NaN or infinite is then marked FAILED (`FailedTrialError`, not
retried) instead of stopping the search.
"""

import copy
import math

import keras
import keras_tuner

from keras_deeprnn.cells import CELL_NAMES
from keras_deeprnn.cells import FORGET_GATE_CELLS
from keras_deeprnn.layers import UNIT_TYPES
from keras_deeprnn.models.architecture import DEEP_TRANSITION_CELLS
from keras_deeprnn.models.architecture import DEEP_TRANSITION_KINDS
from keras_deeprnn.training import TimeBudget
from keras_deeprnn.training import WeightNoise

from . import apps_module

HP_NAMES = (
    "cell",
    "arch",
    "depth",
    "unit_type",
    "units",
    "dropout",
    "recurrent_dropout",
    "learning_rate",
    "lr_schedule",
    "clipnorm",
    "weight_noise",
    "forget_bias",
)
# Up to twice Pascanu et al.'s 0.075: the JSB searches' best trials sat at 0.075, the old top.
WEIGHT_NOISE = (0.0, 0.025, 0.05, 0.075, 0.1, 0.15)
# Top of dropout and recurrent dropout: the focused JSB search's winner sat at 0.5, the old top.
MAX_DROPOUT = 0.7


def cosine_by_epoch(lr, epochs, final_fraction=0.1):
    """A `keras.callbacks.LearningRateScheduler` that sets Adam's rate at the
    start of epoch e (from 0) to lr * (f + (1 - f) (1 + cos(pi e / epochs)) / 2),
    f = `final_fraction`: the apps' `--lr-schedule cosine`, by epoch."""

    def rate(epoch, _):
        fraction = min(epoch / max(int(epochs), 1), 1.0)
        return lr * (final_fraction + (1 - final_fraction) * (1 + math.cos(math.pi * fraction)) / 2)

    return keras.callbacks.LearningRateScheduler(rate)


class AppHyperModel(keras_tuner.HyperModel):
    """The search space shared by the apps (see the module docstring);
    subclasses build and compile their app's model from the chosen values.

    Args:
        archs: The architectures the app's builder takes.
        objective: The `keras_tuner.Objective` of the app (a validation metric).
        fixed: Dict of hyperparameter names to pinned values.
        units: `(min, max)` of the units.
        max_depth: Largest depth of the deep architectures (>= 2).
        build_kwargs: More (unsearched) arguments of the app's model builder.
        name: Name of the hypermodel.
    """

    names = HP_NAMES  # the space's hyperparameters; an app's own ones follow the shared ones

    def __init__(
        self,
        archs,
        objective,
        fixed=None,
        units=(32, 256),
        max_depth=3,
        build_kwargs=None,
        name=None,
    ):
        super().__init__(name=name)
        self.archs = tuple(archs)
        self.objective = objective
        self.fixed = dict(fixed or {})
        unknown = sorted(set(self.fixed) - set(self.names))
        if unknown:
            raise ValueError(
                f"Unknown hyperparameter(s) {unknown} to fix; the space has {', '.join(self.names)}."
            )
        if "cell" in self.fixed and self.fixed["cell"] not in CELL_NAMES:
            raise ValueError(
                f"Unknown cell {self.fixed['cell']!r}; choose one of {', '.join(CELL_NAMES)}."
            )
        if "arch" in self.fixed and self.fixed["arch"] not in self.archs:
            raise ValueError(
                f"Unknown arch {self.fixed['arch']!r}; this app takes {', '.join(self.archs)}."
            )
        if (
            self.fixed.get("cell") not in (None, *DEEP_TRANSITION_CELLS)
            and self.fixed.get("arch") in DEEP_TRANSITION_KINDS
        ):
            raise ValueError(
                f"cell {self.fixed['cell']!r} has no deep-transition form "
                f"(arch {self.fixed['arch']!r})."
            )
        low, high = (int(u) for u in units)
        if not 1 <= low <= high:
            raise ValueError(
                f"units must be a range (min, max) with 1 <= min <= max, got {units!r}."
            )
        self.units = (low, high)
        if int(max_depth) < 2:
            raise ValueError(f"max_depth must be at least 2, got {max_depth}.")
        self.max_depth = int(max_depth)
        self.build_kwargs = dict(build_kwargs or {})

    def _choose(self, hp, name, declare):
        """`hp.Fixed` for a pinned name, else `declare()` (in the open scope)."""
        if name in self.fixed:
            return hp.Fixed(name, self.fixed[name])
        return declare()

    def values(self, hp):
        """Declares the space on `hp` and returns this trial's values (a
        dict over `names`, None for inactive ones)."""
        cells, archs = CELL_NAMES, self.archs
        if self.fixed.get("cell") not in (None, *DEEP_TRANSITION_CELLS):
            archs = tuple(a for a in archs if a not in DEEP_TRANSITION_KINDS)
        if self.fixed.get("arch") in DEEP_TRANSITION_KINDS:
            cells = DEEP_TRANSITION_CELLS
        v = {
            "cell": self._choose(hp, "cell", lambda: hp.Choice("cell", cells)),
            "arch": self._choose(hp, "arch", lambda: hp.Choice("arch", archs)),
        }
        deep = [a for a in archs if a != "rnn"]
        v["depth"] = None
        if deep:
            with hp.conditional_scope("arch", deep):
                v["depth"] = self._choose(hp, "depth", lambda: hp.Int("depth", 2, self.max_depth))
        v["unit_type"] = None
        transitions = [a for a in archs if a in DEEP_TRANSITION_KINDS]
        if transitions:
            with hp.conditional_scope("arch", transitions):
                v["unit_type"] = self._choose(
                    hp, "unit_type", lambda: hp.Choice("unit_type", UNIT_TYPES)
                )
        v["units"] = self._choose(hp, "units", lambda: hp.Int("units", *self.units, sampling="log"))
        v["dropout"] = self._choose(hp, "dropout", lambda: hp.Float("dropout", 0.0, MAX_DROPOUT))
        v["recurrent_dropout"] = self._choose(
            hp, "recurrent_dropout", lambda: hp.Float("recurrent_dropout", 0.0, MAX_DROPOUT)
        )
        v["learning_rate"] = self._choose(
            hp, "learning_rate", lambda: hp.Float("learning_rate", 1e-4, 3e-2, sampling="log")
        )
        v["lr_schedule"] = self._choose(
            hp, "lr_schedule", lambda: hp.Choice("lr_schedule", ["constant", "cosine"])
        )
        v["clipnorm"] = self._choose(
            hp, "clipnorm", lambda: hp.Float("clipnorm", 0.1, 10.0, sampling="log")
        )
        v["weight_noise"] = self._choose(
            hp, "weight_noise", lambda: hp.Choice("weight_noise", WEIGHT_NOISE)
        )
        with hp.conditional_scope("cell", [c for c in cells if c in FORGET_GATE_CELLS]):
            v["forget_bias"] = self._choose(
                hp, "forget_bias", lambda: hp.Float("forget_bias", 0.0, 3.0)
            )
        return v

    def build(self, hp):
        v = self.values(hp)
        if v["arch"] in DEEP_TRANSITION_KINDS and v["cell"] not in DEEP_TRANSITION_CELLS:
            raise keras_tuner.errors.FailedTrialError(
                f"cell {v['cell']!r} has no deep-transition form (arch {v['arch']!r}); "
                "trial skipped."
            )
        model = self.build_model(self.model_kwargs(v))
        return self.compile_model(model, v["learning_rate"], v["clipnorm"])

    def model_kwargs(self, v):
        """The app builder's keyword arguments for the trial's values `v`."""
        cell_kwargs = {"forget_bias": v["forget_bias"]} if v["forget_bias"] is not None else None
        return dict(
            cell=v["cell"],
            arch=v["arch"],
            units=v["units"],
            depth=v["depth"],
            dropout=v["dropout"],
            recurrent_dropout=v["recurrent_dropout"],
            unit_type=v["unit_type"] or "tanh",
            cell_kwargs=cell_kwargs,
            **self.build_kwargs,
        )

    def build_model(self, kwargs):
        """The app model built with `kwargs` (see `model_kwargs`)."""
        raise NotImplementedError

    def compile_model(self, model, learning_rate, clipnorm):
        """`model` compiled by the app's own compile function."""
        raise NotImplementedError

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        """`model.fit` with `TerminateOnNaN` (and the cosine of `lr_schedule`,
        and `WeightNoise` first, so that the others see clean weights);
        raises `FailedTrialError` when the training loss became NaN or
        infinite.

        The cosine runs over the trial's epochs, or, when `callbacks` hold a
        `TimeBudget`, over its budget by the wall clock (as the apps'
        `--lr-schedule cosine --time-budget`): a budget that ends a trial
        before its `epochs` would otherwise cut it partway down."""
        callbacks = [*(callbacks or []), keras.callbacks.TerminateOnNaN()]
        if hp.values.get("weight_noise"):
            callbacks.insert(0, WeightNoise(hp.get("weight_noise")))
        if hp.values.get("lr_schedule") == "cosine":
            at = next((i for i, c in enumerate(callbacks) if isinstance(c, TimeBudget)), None)
            if at is not None:  # a copy: the caller's callback stays as it was
                budget = callbacks[at] = copy.copy(callbacks[at])
                budget.cosine_from = hp.get("learning_rate")
            else:
                callbacks.append(cosine_by_epoch(hp.get("learning_rate"), kwargs.get("epochs", 1)))
        history = model.fit(*args, callbacks=callbacks, **kwargs)
        losses = history.history.get("loss", [])
        for epoch, loss in zip(history.epoch, losses):
            if not math.isfinite(loss):
                raise keras_tuner.errors.FailedTrialError(
                    f"the training loss became {loss} in epoch {epoch + 1}; trial marked "
                    "failed (TerminateOnNaN stopped it)."
                )
        return history


class MusicHyperModel(AppHyperModel):
    """The music app's next-frame model (`apps.music.model`); objective: the
    validation frame NLL `val_nll` (min).

    Args:
        fixed, units, max_depth, name: See `AppHyperModel`.
        **build_kwargs: More arguments of `apps.music.model.build_model`
            (e.g. `keys`, `output`).

    Besides the shared space it searches `input_dropout` (0 .. 0.3, dropout
    on the input frames: the notes of the past), as the app's best recipes
    use it.

    Example:

    >>> hypermodel = MusicHyperModel(units=(8, 16), fixed={"cell": "gru"})
    >>> model = hypermodel.build(keras_tuner.HyperParameters())
    >>> model.output_shape
    (None, None, 88)
    """

    def __init__(self, fixed=None, units=(32, 256), max_depth=3, name="music", **build_kwargs):
        super().__init__(
            apps_module("music.model").ARCHS,
            keras_tuner.Objective("val_nll", "min"),
            fixed,
            units,
            max_depth,
            build_kwargs,
            name,
        )

    names = HP_NAMES + ("input_dropout",)

    def values(self, hp):
        v = super().values(hp)
        v["input_dropout"] = self._choose(
            hp, "input_dropout", lambda: hp.Float("input_dropout", 0.0, 0.3)
        )
        return v

    def model_kwargs(self, v):
        return {**super().model_kwargs(v), "input_dropout": v["input_dropout"]}

    def build_model(self, kwargs):
        return apps_module("music.model").build_model(**kwargs)

    def compile_model(self, model, learning_rate, clipnorm):
        return apps_module("music.model").compile_model(model, learning_rate, clipnorm)


class SentimentHyperModel(AppHyperModel):
    """The sentiment app's classifier (`apps.sentiment.model`) on token ids;
    objective: the validation accuracy `val_accuracy` (max).

    Args:
        vocab_size: Ids of the vectorizer, padding and ``[UNK]`` included.
        num_classes: Number of labels.
        fixed, units, max_depth, name: See `AppHyperModel`.
        **build_kwargs: More arguments of
            `apps.sentiment.model.build_classifier` (e.g. `embedding_dim`,
            `pooling`).
    """

    def __init__(
        self,
        vocab_size,
        num_classes=2,
        fixed=None,
        units=(16, 128),
        max_depth=3,
        name="sentiment",
        **build_kwargs,
    ):
        super().__init__(
            apps_module("sentiment.model").ARCHS,
            keras_tuner.Objective("val_accuracy", "max"),
            fixed,
            units,
            max_depth,
            build_kwargs,
            name,
        )
        self.vocab_size = int(vocab_size)
        self.num_classes = int(num_classes)

    def build_model(self, kwargs):
        return apps_module("sentiment.model").build_classifier(
            self.vocab_size, self.num_classes, **kwargs
        )

    def compile_model(self, model, learning_rate, clipnorm):
        return apps_module("sentiment.model").compile_classifier(model, learning_rate, clipnorm)


class TaggingHyperModel(AppHyperModel):
    """The tagging app's tagger (`apps.tagging.model`) on raw tokens;
    objective: the validation token accuracy `val_accuracy` (max).

    Args:
        vocabulary, characters, tags: As in `apps.tagging.model.build_model`.
        fixed, units, max_depth, name: See `AppHyperModel`.
        **build_kwargs: More arguments of `apps.tagging.model.build_model`
            (e.g. `word_dim`, `char_units`, `word_counts`, `crf`).
    """

    def __init__(
        self,
        vocabulary,
        characters,
        tags,
        fixed=None,
        units=(32, 256),
        max_depth=3,
        name="tagging",
        **build_kwargs,
    ):
        super().__init__(
            apps_module("tagging.model").ARCHS,
            keras_tuner.Objective("val_accuracy", "max"),
            fixed,
            units,
            max_depth,
            build_kwargs,
            name,
        )
        self.vocabulary, self.characters, self.tags = list(vocabulary), list(characters), list(tags)

    def build_model(self, kwargs):
        return apps_module("tagging.model").build_model(
            self.vocabulary, self.characters, self.tags, **kwargs
        )

    def compile_model(self, model, learning_rate, clipnorm):
        return apps_module("tagging.model").compile_model(model, learning_rate, clipnorm)
