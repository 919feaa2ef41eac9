"""The evolutionary search: mutations, the oracle's bookkeeping and scores,
the tasks' generated data, and a short search under a KerasTuner tuner."""

import doctest
import random
import re
import xml.etree.ElementTree as ElementTree

import keras_tuner
import numpy as np
import pytest

from keras_deeprnn.cells import GraphCell
from keras_deeprnn.cells.graph import GRU_GENOME
from keras_deeprnn.cells.graph import LSTM_GENOME
from keras_deeprnn.cells.graph import parse_genome
from tuning import evolution
from tuning import tasks
from tuning.evolution import EvolutionOracle
from tuning.evolution import mutate
from tuning.tasks import TaskSuite


class FixedRandom(random.Random):
    """`random.Random` whose `choice` takes the listed picks in turn."""

    def __init__(self, picks):
        super().__init__(0)
        self.picks = list(picks)

    def choice(self, seq):
        pick = self.picks.pop(0)
        assert pick in seq, (pick, seq)
        return pick


def _graph():
    # h_t = tanh(lin(x, h)) * sigmoid(lin(x, h))
    return (
        {
            "a": ("lin", ("x", "h")),
            "t": ("tanh", ("a",)),
            "b": ("lin", ("x", "h")),
            "s": ("sigmoid", ("b",)),
            "h_t": ("mul", ("t", "s")),
        },
        {"h_t": "h_t"},
    )


def test_activation_choices_are_the_papers():
    assert set(evolution.ACTIVATION_CHOICES) == {
        "tanh",
        "sigmoid",
        "relu",
        "lin",
        "lin1",
        "lin0.9",
        "lin1.1",
    }


def test_replace_activation_and_elementwise():
    nodes, outputs = _graph()
    assert evolution.replace_activation(nodes, outputs, "t", FixedRandom(["relu"]))
    assert nodes["t"] == ("relu", ("a",))
    # A linear map of x and h can only become another linear map.
    assert evolution.replace_activation(nodes, outputs, "a", FixedRandom(["lin1"]))
    assert nodes["a"] == ("lin1", ("x", "h"))
    assert not evolution.replace_activation(nodes, outputs, "h_t", random.Random(0))
    assert evolution.replace_elementwise(nodes, outputs, "h_t", FixedRandom(["sub"]))
    assert nodes["h_t"] == ("sub", ("t", "s"))
    assert not evolution.replace_elementwise(nodes, outputs, "t", random.Random(0))


def test_insert_activation_between_node_and_parent():
    nodes, outputs = _graph()
    rng = FixedRandom(["lin0.9"])
    rng.randrange = lambda n: 1  # the second argument, s
    assert evolution.insert_activation(nodes, outputs, "h_t", rng)
    (new,) = set(nodes) - set(_graph()[0])
    assert nodes[new] == ("lin0.9", ("s",))
    assert nodes["h_t"] == ("mul", ("t", new))


def test_replace_by_ancestor_redirects_every_use():
    nodes, outputs = _graph()
    assert evolution.replace_by_ancestor(nodes, outputs, "t", FixedRandom(["a"]))
    assert nodes["h_t"] == ("mul", ("a", "s"))
    assert evolution.replace_by_ancestor(nodes, outputs, "h_t", FixedRandom(["s"]))
    assert outputs == {"h_t": "s"}


def test_replace_by_combination_of_two_ancestors():
    nodes, outputs = _graph()
    # Replace t by (an ancestor of t: a) * (an ancestor of s: h); the
    # picks: the other node, the operation, then the two ancestors.
    rng = FixedRandom(["s", "mul", "a", "h"])
    assert evolution.replace_by_combination(nodes, outputs, "t", rng)
    (new,) = set(nodes) - set(_graph()[0])
    assert nodes[new] == ("mul", ("a", "h"))
    assert nodes["h_t"] == ("mul", (new, "s"))


def test_mutants_are_valid_new_genomes():
    rng = random.Random(0)
    seen = set()
    for k in range(40):
        parent = (GRU_GENOME, LSTM_GENOME)[k % 2]
        child = mutate(parent, rng, max_nodes=30)
        assert child is not None and child != parent
        nodes, outputs = parse_genome(child)  # raises if malformed
        assert len(nodes) <= 30
        GraphCell(child, 3).build((None, 2))
        seen.add(child)
    assert len(seen) > 30


def _report(oracle, genome_of_trial, results):
    """Run one trial by hand: create it, report `results`, end it."""
    trial = oracle.create_trial("tuner0")
    assert trial.status == "RUNNING"
    genome_of_trial.append(trial.hyperparameters.values["genome"])
    oracle.update_trial(trial.trial_id, results)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    return trial


def _oracle(tmp_path, **kwargs):
    objectives = [
        keras_tuner.Objective("acc", "max"),
        keras_tuner.Objective("nll", "min"),
    ]
    oracle = EvolutionOracle(objectives, seed=3, **kwargs)
    oracle.hyperparameters.Float("learning_rate", 1e-3, 1e-1, default=0.01)
    oracle._set_project_dir(str(tmp_path), "p")
    return oracle


@pytest.mark.filterwarnings("ignore:All-NaN axis:RuntimeWarning")  # the NaN report
def test_oracle_starts_from_gru_and_lstm_and_scores_relative_to_gru(tmp_path):
    oracle = _oracle(tmp_path, max_trials=20, population_size=3, reevaluate_probability=0.0)
    genomes = []
    first = oracle.create_trial("tuner0")
    assert first.hyperparameters.values == {"genome": GRU_GENOME, "learning_rate": 0.01}
    genomes.append(GRU_GENOME)
    # Until the GRU reports, the other proposals wait (after the LSTM's).
    assert oracle.create_trial("tuner1").hyperparameters.values["genome"] == LSTM_GENOME
    genomes.append(LSTM_GENOME)
    assert oracle.create_trial("tuner2").status == "IDLE"
    oracle.update_trial(first.trial_id, {"acc": 0.5, "nll": 2.0})
    first.status = "COMPLETED"
    oracle.end_trial(first)
    lstm = oracle.ongoing_trials["tuner1"]
    oracle.update_trial(lstm.trial_id, {"acc": 0.6, "nll": 4.0})
    lstm.status = "COMPLETED"
    oracle.end_trial(lstm)
    # LSTM: ratios 0.6 / 0.5 = 1.2 and 2 / 4 = 0.5; the worst counts.
    scores = {g: s for g, s, _ in oracle.ranking()}
    assert scores[GRU_GENOME] == pytest.approx(1.0)
    assert scores[LSTM_GENOME] == pytest.approx(0.5, rel=1e-5)
    values = [
        {"acc": 0.9, "nll": 1.0},
        {"acc": 0.1, "nll": 1.0},
        {"acc": 0.5, "nll": float("nan")},
        {"acc": 0.7, "nll": 1.9},
    ]
    for results in values:  # four mutants (no re-evaluations)
        trial = _report(oracle, genomes, results)
        assert trial.hyperparameters.values["learning_rate"] != 0.01
    assert len(set(genomes)) == 6
    # min(acc / 0.5, 2.0 / nll), a NaN counting 0; the best three are kept.
    ranking = oracle.ranking()
    assert [g for g, _, _ in ranking] == [genomes[2], genomes[5], GRU_GENOME]
    assert [s for _, s, _ in ranking] == pytest.approx([1.8, 2.0 / 1.9, 1.0], rel=1e-4)
    best = oracle.get_best_trials(1)[0]
    assert best.hyperparameters.values["genome"] == ranking[0][0]


def test_oracle_state_round_trips(tmp_path):
    oracle = _oracle(tmp_path, max_trials=10)
    genomes = []
    for results in ({"acc": 0.5, "nll": 2.0}, {"acc": 0.4, "nll": 2.5}, {"acc": 0.6, "nll": 1.5}):
        _report(oracle, genomes, results)
    state = oracle.get_state()
    clone = _oracle(tmp_path, max_trials=10)
    clone.trials = oracle.trials
    clone.set_state(state)
    assert clone.ranking() == oracle.ranking()
    assert clone.proposed == oracle.proposed and clone.baseline == {"acc": 0.5, "nll": 2.0}
    assert clone.populate_space("03") == oracle.populate_space("03")
    other = EvolutionOracle("val_loss", seed=3)
    other.trials = oracle.trials
    with pytest.raises(ValueError, match="objectives"):
        other.set_state(state)


def test_oracle_arguments():
    with pytest.raises(ValueError, match="needs `objective`"):
        EvolutionOracle()
    assert EvolutionOracle(["val_loss", "val_accuracy"]).tasks == {
        "val_loss": "min",
        "val_accuracy": "max",
    }
    with pytest.raises(ValueError, match="minimized or maximized"):
        EvolutionOracle("score")
    with pytest.raises(ValueError, match="population_size"):
        EvolutionOracle("val_loss", population_size=0)
    with pytest.raises(ValueError, match="reevaluate_probability"):
        EvolutionOracle("val_loss", reevaluate_probability=1.5)
    assert EvolutionOracle("val_loss").tasks == {"val_loss": "min"}


def test_relative_score():
    directions = {"a": "max", "b": "min"}
    assert tasks.relative_score(
        {"a": 0.8, "b": 3.0}, {"a": 0.4, "b": 1.5}, directions
    ) == pytest.approx(0.5, rel=1e-5)
    assert (
        tasks.relative_score({"a": float("nan"), "b": 1.0}, {"a": 0.4, "b": 1.5}, directions) == 0.0
    )
    assert np.isnan(tasks.relative_score({"a": 1.0, "b": 1.0}, {"a": 0.4}, directions))


def test_arithmetic_data_answers_the_question():
    inputs, targets, weights = tasks.arithmetic_data(50, seed=0, max_digits=3)
    vocab = tasks.ARITHMETIC_VOCAB
    for row, target, weight in zip(inputs, targets, weights):
        text = "".join(vocab[i] for i in row if i) + vocab[target[row > 0][-1]]
        question, answer = text.split("=")
        clean = re.sub("[a-j]", "", question)
        a, op, b = re.fullmatch(r"(\d+)([+-])(\d+)", clean).groups()
        assert answer == f"{int(a) + int(b) if op == '+' else int(a) - int(b)}."
        scored = "".join(vocab[i] for i in target[weight > 0])
        assert scored == answer


def test_xml_data_is_nested_and_scores_closing_tags():
    text, scored = tasks.xml_text(np.random.default_rng(0), 200)
    root = ElementTree.fromstring(f"<root>{text}</root>")  # well-formed
    assert len(list(root.iter())) > 10
    marks = "".join("^" if s else " " for s in scored)
    for match in re.finditer(r"</(\w+)>", text):
        assert marks[match.start() : match.end()] == "  " + "^" * (len(match.group(1)) + 1)
    assert sum(scored) == sum(len(m.group(1)) + 1 for m in re.finditer(r"</(\w+)>", text))
    inputs, targets, weights = tasks.xml_data(4, seed=1, length=30)
    assert inputs.shape == targets.shape == weights.shape == (4, 30)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])


def test_units_for_params_is_the_largest_within_budget():
    def head(u):
        return 10 * u + 10

    units = tasks.units_for_params(GRU_GENOME, 5, head, 2000)

    def size(u):
        cell = GraphCell(GRU_GENOME, u)
        cell.build((None, 5))
        return cell.count_params() + head(u)

    assert size(units) <= 2000 < size(units + 1)
    with pytest.raises(ValueError, match="too small"):
        tasks.units_for_params(GRU_GENOME, 5, head, 20)


def test_task_suite_arguments():
    with pytest.raises(ValueError, match="exactly one of `units` and `params`"):
        TaskSuite(["arithmetic"])
    with pytest.raises(ValueError, match="Unknown task 'chess'"):
        TaskSuite(["chess"], units=4)
    with pytest.raises(ValueError, match="not in `tasks`"):
        TaskSuite(["arithmetic"], units=4, task_options={"xml": {}})


@pytest.mark.parametrize("module", [evolution, tasks])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_five_generations_on_a_tiny_arithmetic_task_and_resume(tmp_path):
    suite = TaskSuite(
        ["arithmetic"],
        units=6,
        steps=4,
        batch_size=8,
        task_options={"arithmetic": {"max_digits": 1, "max_distractors": 1}},
    )

    def search(max_trials):
        oracle = EvolutionOracle(suite.objectives, max_trials=max_trials, population_size=4, seed=5)
        tuner = keras_tuner.Tuner(
            oracle=oracle, hypermodel=suite, directory=str(tmp_path), project_name="evo"
        )
        tuner.search(verbose=0)
        return tuner.oracle

    oracle = search(7)  # the GRU, the LSTM, then five generations
    trials = list(oracle.trials.values())
    assert len(trials) == 7 and all(t.status == "COMPLETED" for t in trials)
    assert oracle.proposed[:2] == [GRU_GENOME, LSTM_GENOME]
    assert len(oracle.proposed) > 3  # mutants were evaluated
    assert set(oracle.baseline) == {"arithmetic"}
    ranking = oracle.ranking()
    assert len(ranking) <= 4
    for genome, score, results in ranking:
        parse_genome(genome)
        assert 0.0 <= score and set(results) == {"arithmetic"}
        assert all(0.0 <= v <= 1.0 for v in results.values())
    # A new tuner on the same directory resumes: one more trial.
    resumed = search(8)
    assert len(resumed.trials) == 8
    assert resumed.proposed[: len(oracle.proposed)] == oracle.proposed
    assert sum(resumed.evaluations.values()) == 8


def test_music_task_scores_frame_nll(tmp_path):
    """With a zero read-out (logits 0) and no learning, every key has
    probability 1/2: the frame NLL is exactly 88 log 2 on any piano roll."""
    from pathlib import Path

    if not (Path(__file__).resolve().parents[2] / "shared/data/music/JSB_Chorales.mat").exists():
        pytest.skip("../shared/data/music/JSB_Chorales.mat is not here")
    suite = TaskSuite(
        ["music"], units=4, steps=2, batch_size=4, task_options={"music": {"max_length": 8}}
    )
    task = suite.tasks[0]
    model = task.model(GraphCell(GRU_GENOME, 4))
    head = model.layers[-1]
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    result = task.run(model, 2, 4, 0, learning_rate=0.0, clipnorm=5.0)
    assert result == pytest.approx({"valid": 88 * np.log(2), "test": 88 * np.log(2)}, rel=1e-5)
    assert suite.objectives[0].direction == "min"
