"""The tasks that score evolved cells (Jozefowicz, Zaremba & Sutskever 2015).

Three tasks, generated on the fly (the music one reads the benchmark files):

* `"arithmetic"`: the paper's arithmetic task. The network reads two numbers
  and an operator, character by character, with distractor letters mixed in
  (`"3e6d9-h1h3="`: 369 - 13), and must then write the digits of the
  sum or difference and a full stop (`"356."`). Teacher forcing; scored by
  the accuracy of the answer characters.
* `"xml"`: character-level modelling of random nested XML
  (`"<ab><cde></cde></ab>"`). Scored by the accuracy of the characters of
  closing tags after `</`, the only ones the past determines, so the score
  measures how well the cell remembers the stack of open tags.
* `"music"`: next-frame prediction on piano rolls (the music app's data,
  JSB chorales by default), scored by the validation frame NLL.

A cell's score is its performance relative to the GRU's on every task,
the worst ratio counting (`relative_score`).
"""

import math
import string
import time

import keras
import keras_tuner
import numpy as np

from keras_deeprnn.cells.graph import GRU_GENOME
from keras_deeprnn.cells.graph import GraphCell
from keras_deeprnn.layers.rnn import RNN

DIGITS = "0123456789"
DISTRACTORS = "abcdefghij"
ARITHMETIC_VOCAB = "_" + DIGITS + "+-=." + DISTRACTORS  # "_" pads
XML_VOCAB = "_<>/" + string.ascii_lowercase


def _encode(text, vocab):
    return [vocab.index(ch) for ch in text]


def arithmetic_example(rng, max_digits=3, max_distractors=5):
    """One question and its answer, e.g. ("3e6d9-h1h3=", "356.").

    Args:
        rng: A `numpy.random.Generator`.
        max_digits: Each number has 1 to `max_digits` digits.
        max_distractors: 0 to this many letters a-j are inserted at random
            places of the question (before "=").
    """
    a, b = (int(rng.integers(0, 10 ** int(rng.integers(1, max_digits + 1)))) for _ in range(2))
    op = "+" if rng.random() < 0.5 else "-"
    chars = list(f"{a}{op}{b}")
    for _ in range(int(rng.integers(0, max_distractors + 1))):
        chars.insert(int(rng.integers(0, len(chars) + 1)), rng.choice(list(DISTRACTORS)))
    return "".join(chars) + "=", f"{a + b if op == '+' else a - b}."


def arithmetic_data(count, seed, max_digits=3, max_distractors=5):
    """Teacher-forced arithmetic sequences.

    Returns:
        `(inputs, targets, weights)`, int32 `(count, T)` character ids of
        `ARITHMETIC_VOCAB` (0 pads) and float32 weights that are 1 on the
        answer characters (the ones scored) and 0 elsewhere.
    """
    rng = np.random.default_rng(seed)
    pairs = [arithmetic_example(rng, max_digits, max_distractors) for _ in range(count)]
    # The longest possible question and answer, so every call has one shape.
    length = 3 * max_digits + max_distractors + 4
    inputs = np.zeros((count, length - 1), "int32")
    targets = np.zeros((count, length - 1), "int32")
    weights = np.zeros((count, length - 1), "float32")
    for k, (question, answer) in enumerate(pairs):
        ids = _encode(question + answer, ARITHMETIC_VOCAB)
        inputs[k, : len(ids) - 1] = ids[:-1]
        targets[k, : len(ids) - 1] = ids[1:]
        weights[k, len(question) - 1 : len(ids) - 1] = 1.0
    return inputs, targets, weights


def xml_text(rng, length, max_depth=4, max_tag=3, tag_letters=8):
    """Random well-nested XML of at least `length` characters.

    Returns:
        `(text, scored)`: the text and a boolean list, True at each
        character of a closing tag after its `</` (name and `>`).
    """
    letters = string.ascii_lowercase[:tag_letters]
    text, scored, stack = [], [], []
    while len(text) < length or stack:
        close = stack and (len(stack) >= max_depth or rng.random() < 0.4)
        if close or (len(text) >= length and stack):
            tag = stack.pop()
            text += list(f"</{tag}>")
            scored += [False, False] + [True] * (len(tag) + 1)
        else:
            size = int(rng.integers(1, max_tag + 1))
            tag = "".join(rng.choice(list(letters), size))
            stack.append(tag)
            text += list(f"<{tag}>")
            scored += [False] * (len(tag) + 2)
    return "".join(text), scored


def xml_data(count, seed, length=40, max_depth=4, max_tag=3):
    """Next-character XML sequences of `length` steps.

    Returns:
        `(inputs, targets, weights)` as for `arithmetic_data`, with weights 1
        on the closing-tag characters `xml_text` marks.
    """
    rng = np.random.default_rng(seed)
    inputs = np.zeros((count, length), "int32")
    targets = np.zeros((count, length), "int32")
    weights = np.zeros((count, length), "float32")
    for k in range(count):
        text, scored = xml_text(rng, length + 1, max_depth, max_tag)
        ids = _encode(text[: length + 1], XML_VOCAB)
        inputs[k], targets[k] = ids[:-1], ids[1:]
        weights[k] = scored[1 : length + 1]
    return inputs, targets, weights


def relative_score(results, baseline, directions):
    """The worst ratio of a cell's results to the baseline's (the GRU's).

    Args:
        results: dict task -> value (accuracy, or NLL).
        baseline: dict task -> the baseline's value.
        directions: dict task -> "max" (higher is better: ratio value /
            baseline) or "min" (lower is better: ratio baseline / value).

    Returns:
        min over tasks of the ratios (above 1: better than the baseline on
        every task); 0 when a result is not finite, NaN when the baseline
        lacks a task.
    """
    ratios = []
    for task, direction in directions.items():
        value, ref = results.get(task), baseline.get(task)
        if ref is None or not math.isfinite(ref):
            return float("nan")
        if value is None or not math.isfinite(value):
            return 0.0
        # The small constant keeps a zero accuracy or NLL from dividing by 0.
        if direction == "max":
            ratios.append((value + 1e-6) / (ref + 1e-6))
        else:
            ratios.append((ref + 1e-6) / (value + 1e-6))
    return min(ratios)


def _char_model(cell, vocab_size, embed_dim):
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocab_size, embed_dim),
            RNN(cell, return_sequences=True),
            keras.layers.Dense(vocab_size),
        ]
    )


class _CharTask:
    """A teacher-forced character task scored by weighted accuracy."""

    direction = "max"

    def __init__(self, name, data, vocab, embed_dim=16, **options):
        self.name, self.data, self.vocab = name, data, vocab
        self.embed_dim, self.options = embed_dim, options

    def model(self, cell):
        return _char_model(cell, len(self.vocab), self.embed_dim)

    def input_dim(self):
        return self.embed_dim

    def head_params(self, units):
        return len(self.vocab) * (self.embed_dim + units + 1)

    def run(self, model, steps, batch_size, seed, learning_rate, clipnorm):
        """Train; return the metric on fresh validation and test data."""
        x, y, w = self.data(steps * batch_size, seed, **self.options)
        model.compile(
            keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(x, y, sample_weight=w, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        valid = self.data(1000, 10_000 + seed, **self.options)
        test = self.data(1000, 20_000 + seed, **self.options)
        inputs, targets, weights = (np.concatenate(p) for p in zip(valid, test))
        logits = model.predict(inputs, batch_size=1000, verbose=0)
        right = (np.argmax(logits, -1) == targets) * weights
        return {
            "valid": float(right[:1000].sum() / weights[:1000].sum()),
            "test": float(right[1000:].sum() / weights[1000:].sum()),
        }


class _MusicTask:
    """Next-frame prediction on piano rolls, scored by validation NLL."""

    name = "music"
    direction = "min"

    def __init__(self, data="jsb", max_length=64):
        self.spec, self.max_length, self.rolls = data, max_length, None

    def model(self, cell):
        return keras.Sequential(
            [
                keras.Input((None, 88)),
                RNN(cell, return_sequences=True),
                keras.layers.Dense(88),
            ]
        )

    def input_dim(self):
        return 88

    def head_params(self, units):
        return 88 * (units + 1)

    def run(self, model, steps, batch_size, seed, learning_rate, clipnorm):
        from keras_deeprnn.data.music import load_music
        from keras_deeprnn.data.music import piano_roll_dataset
        from keras_deeprnn.metrics import FrameNLL
        from keras_deeprnn.metrics import FrameNLLMetric

        if self.rolls is None:
            self.rolls = load_music(self.spec)
        train = piano_roll_dataset(
            self.rolls["train"],
            batch_size,
            shuffle=True,
            seed=seed,
            max_length=self.max_length,
        ).repeat()
        model.compile(
            keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
            FrameNLL(),
            weighted_metrics=[FrameNLLMetric()],
        )
        # The data set shuffles its pieces itself.
        model.fit(train, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
        return {
            split: float(
                model.evaluate(
                    piano_roll_dataset(self.rolls[split], 64),
                    verbose=0,
                    return_dict=True,
                )["nll"]
            )
            for split in ("valid", "test")
        }


def _make_task(name, options):
    if name == "arithmetic":
        return _CharTask("arithmetic", arithmetic_data, ARITHMETIC_VOCAB, **options)
    if name == "xml":
        return _CharTask("xml", xml_data, XML_VOCAB, **options)
    if name == "music":
        return _MusicTask(**options)
    raise ValueError(f"Unknown task {name!r}; tasks: 'arithmetic', 'xml', 'music'.")


class TaskSuite(keras_tuner.HyperModel):
    """Trains a genome's cell on each task and reports one metric per task.

    The hyperparameters are `genome` (a string, `hp.Fixed`, proposed by
    `tuning.evolution.EvolutionOracle`), `learning_rate` and `clipnorm`.
    `fit` returns `{task: metric}`: the answer-character accuracy for
    `"arithmetic"`, the closing-tag accuracy for `"xml"` (both "max"), the
    validation frame NLL for `"music"` ("min"); `objectives` lists them
    for the oracle. Each task trains a fresh model (embedding or frame
    input, `keras_deeprnn.layers.RNN` of a `GraphCell`, linear read-out) for
    `steps` Adam steps on data generated from `seed`, the same for every
    trial.

    Args:
        tasks: Task names, a subset of "arithmetic", "xml", "music".
        units: Units of every cell; or None with `params`.
        params: Parameter budget per task model: each genome gets the
            largest `units` whose model stays within it, so cells are
            compared at (about) equal size.
        steps: Training steps per task.
        batch_size: Sequences per step.
        seed: Seed of the generated data.
        task_options: dict task -> keyword arguments of its generator
            (e.g. `{"arithmetic": {"max_digits": 2}}`) or, for "music",
            `data` and `max_length`.

    Example:

    >>> suite = TaskSuite(["arithmetic"], units=8, steps=2)
    >>> hp = keras_tuner.HyperParameters()
    >>> model = suite.build(hp)
    >>> sorted(suite.fit(hp, model))
    ['arithmetic']
    """

    def __init__(
        self,
        tasks=("arithmetic",),
        units=None,
        params=None,
        steps=200,
        batch_size=32,
        seed=0,
        task_options=None,
    ):
        super().__init__()
        if (units is None) == (params is None):
            raise ValueError(
                "TaskSuite needs exactly one of `units` and `params`, got "
                f"units={units!r}, params={params!r}."
            )
        if isinstance(tasks, str):
            tasks = [tasks]
        task_options = dict(task_options or {})
        unknown = set(task_options) - set(tasks)
        if unknown:
            raise ValueError(f"task_options names tasks not in `tasks`: {sorted(unknown)}.")
        self.tasks = [_make_task(t, task_options.get(t, {})) for t in tasks]
        if not self.tasks:
            raise ValueError("TaskSuite needs at least one task.")
        self.units, self.params = units, params
        self.steps, self.batch_size, self.seed = int(steps), int(batch_size), seed

    @property
    def objectives(self):
        """One `keras_tuner.Objective` per task, for `EvolutionOracle`."""
        return [keras_tuner.Objective(t.name, t.direction) for t in self.tasks]

    def units_for(self, genome, task):
        """The units a genome gets on a task (see `params`)."""
        if self.params is None:
            return self.units
        return units_for_params(genome, task.input_dim(), task.head_params, self.params)

    def build(self, hp):
        genome = hp.Fixed("genome", GRU_GENOME)
        hp.Float("learning_rate", 1e-3, 3e-2, sampling="log", default=1e-2)
        hp.Choice("clipnorm", [1.0, 5.0, 20.0], default=5.0)
        task = self.tasks[0]
        return task.model(GraphCell(genome, self.units_for(genome, task)))

    def fit(self, hp, model, *args, **kwargs):
        """Trains `model` on the first task and fresh models on the others.

        Extra arguments (the tuner's callbacks) are not used: every task
        brings its own data.
        """
        genome = hp.get("genome")
        results = {}
        for k, task in enumerate(self.tasks):
            if k:
                model = task.model(GraphCell(genome, self.units_for(genome, task)))
            results[task.name] = task.run(
                model,
                self.steps,
                self.batch_size,
                self.seed,
                hp.get("learning_rate"),
                hp.get("clipnorm"),
            )["valid"]
        return results


def units_for_params(genome, input_dim, head_params, params):
    """The largest units whose cell plus head has at most `params` weights.

    Args:
        genome: The cell's genome.
        input_dim: Features per step the cell reads.
        head_params: Function units -> parameters outside the cell.
        params: The budget.

    Raises:
        ValueError: even one unit is over the budget.
    """

    def size(units):
        cell = GraphCell(genome, units)
        cell.build((None, input_dim))
        return cell.count_params() + head_params(units)

    if size(1) > params:
        raise ValueError(
            f"A parameter budget of {params} is too small for this genome "
            f"({size(1)} parameters with 1 unit)."
        )
    low, high = 1, 2
    while size(high) <= params:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if size(mid) <= params else (low, mid)
    return low


def compare(genomes, suite, learning_rates, seeds):
    """Train each genome on the suite's tasks: several rates and seeds.

    For each genome and task, trains with every learning rate and each
    seed (the weights' initialisation; the data are the suite's), picks the
    rate with the best mean validation metric and returns per genome and
    task `{"units", "params", "rate", "valid", "test", "seconds"}`:
    `valid` and `test` list the metric per seed, `seconds` is the total
    training time of the genome on the task.
    """
    report = {}
    for label, genome in genomes.items():
        report[label] = {}
        for task in suite.tasks:
            units = suite.units_for(genome, task)
            runs = {}
            start = time.time()
            for rate in learning_rates:
                values = []
                for seed in seeds:
                    keras.utils.set_random_seed(seed)
                    model = task.model(GraphCell(genome, units))
                    values.append(
                        task.run(model, suite.steps, suite.batch_size, suite.seed, rate, 5.0)
                    )
                runs[rate] = values
            pick = max if task.direction == "max" else min
            rate = pick(runs, key=lambda r: np.mean([v["valid"] for v in runs[r]]))
            report[label][task.name] = {
                "units": units,
                "params": task.model(GraphCell(genome, units)).count_params(),
                "rate": rate,
                "valid": [v["valid"] for v in runs[rate]],
                "test": [v["test"] for v in runs[rate]],
                "seconds": time.time() - start,
            }
    return report
