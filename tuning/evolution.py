"""Evolutionary search over cell genomes (Jozefowicz, Zaremba & Sutskever 2015).

`EvolutionOracle` is a `keras_tuner.Oracle`: it proposes the hyperparameter
`genome` (a `GraphCell` genome string) with fresh values of the other
hyperparameters, so it runs under any KerasTuner tuner, resumes from the
tuner's directory and runs distributed. The population starts from the GRU
and the LSTM, keeps the best `population_size` genomes and at every trial
either re-evaluates one of them or proposes a mutant of one (`mutate`).

Run a search on the arithmetic task from the command line:

    python -m tuning.evolution --tasks arithmetic --max-trials 100 \\
        --params 5000 --steps 300 --directory runs/evolution
"""

import argparse
import hashlib
import json
import math
import random

import keras_tuner
from keras_tuner.engine.metrics_tracking import infer_metric_direction
from keras_tuner.engine.trial import TrialStatus

from keras_deeprnn.cells.graph import ACTIVATIONS
from keras_deeprnn.cells.graph import ELEMENTWISE
from keras_deeprnn.cells.graph import GRU_GENOME
from keras_deeprnn.cells.graph import INPUTS
from keras_deeprnn.cells.graph import LINEAR_BIASES
from keras_deeprnn.cells.graph import LSTM_GENOME
from keras_deeprnn.cells.graph import format_genome
from keras_deeprnn.cells.graph import parse_genome
from keras_deeprnn.cells.graph import render

from .tasks import relative_score

# The paper's activation choices: tanh, sigmoid, ReLU and Linear(b, .), a
# learned linear map whose bias starts at b = 0, 1, 0.9 or 1.1.
ACTIVATION_CHOICES = ACTIVATIONS + tuple(LINEAR_BIASES)


def _ancestors(nodes, node):
    """Every node and input `node` depends on, itself excluded."""
    seen, todo = [], [] if node in INPUTS else list(nodes[node][1])
    while todo:
        arg = todo.pop()
        if arg not in seen:
            seen.append(arg)
            if arg not in INPUTS:
                todo.extend(nodes[arg][1])
    return seen


def _new_id(nodes):
    k = len(nodes)
    while f"#m{k}" in nodes:
        k += 1
    return f"#m{k}"


def _redirect(nodes, outputs, old, new):
    """Every use of `old` (in arguments and outputs) becomes `new`."""
    for node, (op, args) in nodes.items():
        if node != new:
            nodes[node] = (op, tuple(new if a == old else a for a in args))
    for name, out in outputs.items():
        if out == old:
            outputs[name] = new


def _activation_for(arg, rng):
    # x_t enters only through linear maps.
    return rng.choice(tuple(LINEAR_BIASES) if arg == "x" else ACTIVATION_CHOICES)


def replace_activation(nodes, outputs, node, rng):
    """Swap an activation or linear map for another of the paper's choices."""
    op, args = nodes[node]
    if op not in ACTIVATION_CHOICES:
        return False
    unary = len(args) == 1 and args[0] != "x"
    choices = [a for a in (ACTIVATION_CHOICES if unary else LINEAR_BIASES) if a != op]
    nodes[node] = (rng.choice(choices), args)
    return True


def replace_elementwise(nodes, outputs, node, rng):
    """Swap an elementwise +, - or * for another."""
    op, args = nodes[node]
    if op not in ELEMENTWISE:
        return False
    nodes[node] = (rng.choice([o for o in ELEMENTWISE if o != op]), args)
    return True


def insert_activation(nodes, outputs, node, rng):
    """Put a random activation between a node and one of its arguments."""
    op, args = nodes[node]
    k = rng.randrange(len(args))
    new = _new_id(nodes)
    nodes[new] = (_activation_for(args[k], rng), (args[k],))
    nodes[node] = (op, args[:k] + (new,) + args[k + 1 :])
    return True


def replace_by_ancestor(nodes, outputs, node, rng):
    """Replace a node by one of its ancestors."""
    _redirect(nodes, outputs, node, rng.choice(_ancestors(nodes, node)))
    return True


def replace_by_combination(nodes, outputs, node, rng):
    """Replace a node by the sum, product or difference of an ancestor of it
    and an ancestor of another random node."""
    other = rng.choice([n for n in nodes if n != node] or [node])
    ancestors = _ancestors(nodes, other)
    if not ancestors:
        return False
    new = _new_id(nodes)
    nodes[new] = (
        rng.choice(ELEMENTWISE),
        (rng.choice(_ancestors(nodes, node)), rng.choice(ancestors)),
    )
    _redirect(nodes, outputs, node, new)
    return True


TRANSFORMATIONS = (
    replace_activation,
    replace_elementwise,
    insert_activation,
    replace_by_ancestor,
    replace_by_combination,
)


def mutate(genome, rng, max_nodes=40, attempts=100):
    """A random valid mutant of `genome`, or None after `attempts` tries.

    Each try draws p uniformly from [0, 1] and, with probability p for each
    node of the genome, applies one of `TRANSFORMATIONS` (chosen at random
    among those that apply) to it. A try counts when the result is a valid
    genome (see `GraphCell`), differs from the parent and has at most
    `max_nodes` nodes. A memory genome whose mutant no longer reads c_{t-1}
    loses its c_t state (the node stays where h_t uses it).

    Args:
        genome: The parent genome.
        rng: A `random.Random`.
        max_nodes: Size limit of the mutant's graph.
        attempts: Tries before giving up.

    Example:

    >>> from keras_deeprnn.cells.graph import GRU_GENOME, parse_genome
    >>> child = mutate(GRU_GENOME, random.Random(0))
    >>> child != GRU_GENOME and parse_genome(child) is not None
    True
    """
    for _ in range(attempts):
        nodes, outputs = parse_genome(genome)
        p = rng.random()
        changed = False
        for node in list(nodes):
            if rng.random() < p:
                for transform in rng.sample(TRANSFORMATIONS, len(TRANSFORMATIONS)):
                    if transform(nodes, outputs, node, rng):
                        changed = True
                        break
        if not changed:
            continue
        try:
            if "c_t" in outputs and not _reads(nodes, outputs, "c"):
                del outputs["c_t"]
            child = format_genome(nodes, outputs)
            size = len(parse_genome(child)[0])
        except ValueError:
            continue
        if child != genome and size <= max_nodes:
            return child
    return None


def _reads(nodes, outputs, name):
    return any(name in _ancestors(nodes, out) for out in outputs.values())


def _objectives(objective):
    if objective is None:
        raise ValueError(
            "EvolutionOracle needs `objective`: the metric, or a list of "
            "metrics (one per task), each trial reports."
        )
    items = objective if isinstance(objective, (list, tuple)) else [objective]
    made = []
    for item in items:
        if isinstance(item, str):
            direction = infer_metric_direction(item)
            if direction is None:
                raise ValueError(
                    f"Cannot tell whether {item!r} is to be minimized or maximized: "
                    f"give keras_tuner.Objective({item!r}, direction=...)."
                )
            item = keras_tuner.Objective(item, direction)
        if not isinstance(item, keras_tuner.Objective):
            raise ValueError(f"Objectives must be names or keras_tuner.Objective, got {item!r}.")
        made.append(item)
    return made


class EvolutionOracle(keras_tuner.Oracle):
    """Evolution of cell genomes as a KerasTuner oracle.

    Jozefowicz et al. 2015's search: the population starts with the GRU
    (the baseline) and the LSTM genomes and keeps the best
    `population_size`. Each new trial either re-evaluates a random member
    with fresh hyperparameters (probability `reevaluate_probability`) or
    evaluates a mutant (`mutate`) of a random member, never one proposed
    before. A trial sets the hyperparameter `genome` (str) and random values
    of every other hyperparameter of the space (the first GRU and LSTM
    trials use the defaults), and reports one metric per objective (task).
    A genome's result on a task is its best over its evaluations; its score
    is `tuning.tasks.relative_score` of those results against the GRU's,
    the worst ratio over the tasks; the population keeps the highest
    scores. `ranking()` lists it; `get_best_trials` orders trials by the
    same score. KerasTuner's `trial.score` is the first objective's value.

    The oracle's state (population, genomes proposed, the GRU's results)
    is saved with `get_state` in the tuner's directory, so a search resumes
    where it stopped.

    Args:
        objective: The metric each trial reports, or a list of metrics, one
            per task: names whose direction KerasTuner knows (e.g.
            "val_loss", "accuracy") or `keras_tuner.Objective`s;
            `tuning.tasks.TaskSuite.objectives` gives them for its tasks.
        max_trials: Number of trials to run.
        population_size: Genomes kept (100 in the paper).
        reevaluate_probability: Chance that a trial re-evaluates a member.
        max_nodes: Largest graph a mutant may have.
        seed: Random seed; given the population, a proposal depends only
            on it and the trial id.
        hyperparameters, allow_new_entries, tune_new_entries,
        max_retries_per_trial, max_consecutive_failed_trials: As in
            `keras_tuner.Oracle`.

    Example:

    >>> oracle = EvolutionOracle("accuracy", max_trials=3, seed=1)
    >>> oracle.populate_space("0")["values"]["genome"] == GRU_GENOME
    True
    """

    def __init__(
        self,
        objective=None,
        max_trials=100,
        population_size=100,
        reevaluate_probability=0.25,
        max_nodes=40,
        seed=None,
        hyperparameters=None,
        allow_new_entries=True,
        tune_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=10,
    ):
        objectives = _objectives(objective)
        super().__init__(
            objective=objectives[0],
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        if population_size < 1:
            raise ValueError(f"population_size must be at least 1, got {population_size!r}.")
        if not 0.0 <= reevaluate_probability <= 1.0:
            raise ValueError(
                f"reevaluate_probability must be in [0, 1], got {reevaluate_probability!r}."
            )
        self.tasks = {o.name: o.direction for o in objectives}
        self.population_size = int(population_size)
        self.reevaluate_probability = float(reevaluate_probability)
        self.max_nodes = int(max_nodes)
        self.hyperparameters.Fixed("genome", GRU_GENOME)
        self.population = {}  # genome -> {task: best value}
        self.evaluations = {}  # genome -> number of completed evaluations
        self.baseline = {}  # the GRU's best value per task
        self.proposed = []  # every genome proposed, in order

    def score(self, results):
        """A genome's results relative to the GRU (see `relative_score`)."""
        return relative_score(results, self.baseline, self.tasks)

    def ranking(self):
        """The population, best first: `[(genome, score, results), ...]`."""
        scored = [
            (genome, self.score(results), results) for genome, results in self.population.items()
        ]
        return sorted(scored, key=lambda item: -item[1] if math.isfinite(item[1]) else math.inf)

    def _values(self, genome, rng, defaults):
        values = {}
        for hp in self.hyperparameters.space:
            if hp.name == "genome":
                continue
            values[hp.name] = hp.default if defaults else hp.random_sample(rng.randrange(2**31))
        values["genome"] = genome
        return values

    def _running(self, genome):
        return any(
            t.hyperparameters.values.get("genome") == genome for t in self.ongoing_trials.values()
        )

    def populate_space(self, trial_id):
        digest = hashlib.sha256(f"{self.seed}:{trial_id}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        running = TrialStatus.RUNNING
        for start in (GRU_GENOME, LSTM_GENOME):
            if start not in self.proposed:
                self.proposed.append(start)
                return {"status": running, "values": self._values(start, rng, defaults=True)}
        if not self.baseline:
            if self._running(GRU_GENOME):
                # Scores need the GRU's results; wait for them.
                return {"status": TrialStatus.IDLE, "values": None}
            return {"status": running, "values": self._values(GRU_GENOME, rng, defaults=True)}
        members = [genome for genome, _, _ in self.ranking()]
        parent = rng.choice(members)
        genome = parent
        if rng.random() >= self.reevaluate_probability:
            for _ in range(10):
                child = mutate(parent, rng, self.max_nodes)
                if child is not None and child not in self.proposed:
                    genome = child
                    break
        if genome not in self.proposed:
            self.proposed.append(genome)
        return {"status": running, "values": self._values(genome, rng, defaults=False)}

    @keras_tuner.synchronized
    def end_trial(self, trial):
        # Record before the base class saves the state.
        if trial.status == TrialStatus.COMPLETED:
            metrics = self.trials[trial.trial_id].metrics
            if all(metrics.exists(task) for task in self.tasks):
                self._record(
                    trial.hyperparameters.values["genome"],
                    {t: float(metrics.get_last_value(t)) for t in self.tasks},
                )
        super().end_trial(trial)

    def _record(self, genome, results):
        def better(new, old, direction):
            if old is None or not math.isfinite(old):
                return new
            if not math.isfinite(new):
                return old
            return max(new, old) if direction == "max" else min(new, old)

        best = self.population.get(genome, {})
        best = {t: better(results[t], best.get(t), d) for t, d in self.tasks.items()}
        self.evaluations[genome] = self.evaluations.get(genome, 0) + 1
        if genome == GRU_GENOME:
            self.baseline = dict(best)
        self.population[genome] = best
        for genome, _, _ in self.ranking()[self.population_size :]:
            del self.population[genome]

    def get_best_trials(self, num_trials=1):
        def key(trial):
            if trial.status != TrialStatus.COMPLETED or not all(
                trial.metrics.exists(t) for t in self.tasks
            ):
                return math.inf
            value = self.score({t: float(trial.metrics.get_last_value(t)) for t in self.tasks})
            return -value if math.isfinite(value) else math.inf

        return sorted(self.trials.values(), key=key)[:num_trials]

    def get_state(self):
        state = super().get_state()
        state.update(
            tasks=self.tasks,
            population=self.population,
            evaluations=self.evaluations,
            baseline=self.baseline,
            proposed=self.proposed,
        )
        return state

    def set_state(self, state):
        super().set_state(state)
        if state["tasks"] != self.tasks:
            raise ValueError(
                f"The saved search has objectives {state['tasks']}, this "
                f"oracle {self.tasks}; use a new directory or project."
            )
        self.population = {g: dict(r) for g, r in state["population"].items()}
        self.evaluations = dict(state["evaluations"])
        self.baseline = dict(state["baseline"])
        self.proposed = list(state["proposed"])


def main(argv=None):
    """Command line: run (or resume) a search, then print the best genomes."""
    from .tasks import TaskSuite
    from .tasks import compare

    parser = argparse.ArgumentParser(prog="python -m tuning.evolution", description=main.__doc__)
    parser.add_argument(
        "--tasks", default="arithmetic", help="comma-separated: arithmetic, xml, music"
    )
    parser.add_argument("--max-trials", type=int, default=100)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--units", type=int)
    size.add_argument(
        "--params", type=int, default=5000, help="parameter budget of each task model (default)"
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-digits", type=int, default=3, help="arithmetic: digits per number")
    parser.add_argument("--directory", default="runs/evolution")
    parser.add_argument("--project", default="search")
    parser.add_argument("--top", type=int, default=3, help="best genomes to print")
    parser.add_argument(
        "--compare-seeds",
        type=int,
        default=0,
        help="re-train the best evolved genome, the GRU and "
        "the LSTM with this many seeds and three learning "
        "rates; print the results as JSON",
    )
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",")
    options = {"arithmetic": {"max_digits": args.max_digits}}
    suite = TaskSuite(
        tasks,
        units=args.units,
        params=None if args.units else args.params,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        task_options={t: o for t, o in options.items() if t in tasks},
    )
    oracle = EvolutionOracle(
        suite.objectives,
        max_trials=args.max_trials,
        population_size=args.population,
        seed=args.seed,
    )
    tuner = keras_tuner.Tuner(
        oracle=oracle, hypermodel=suite, directory=args.directory, project_name=args.project
    )
    tuner.search(verbose=0)
    ranking = tuner.oracle.ranking()
    print(
        f"{len(tuner.oracle.trials)} trials, {len(tuner.oracle.proposed)} "
        f"genomes; GRU {tuner.oracle.baseline}"
    )
    for rank, (genome, score, results) in enumerate(ranking[: args.top], 1):
        print(
            f"\n#{rank}  score {score:.4f}  {results}  "
            f"({tuner.oracle.evaluations[genome]} evaluations)\n{genome}\n" + render(genome)
        )
    evolved = [g for g, _, _ in ranking if g not in (GRU_GENOME, LSTM_GENOME)]
    if args.compare_seeds and evolved:
        genomes = {"evolved": evolved[0], "gru": GRU_GENOME, "lstm": LSTM_GENOME}
        table = compare(genomes, suite, (3e-3, 1e-2, 3e-2), range(args.compare_seeds))
        print(json.dumps({"genomes": genomes, "results": table}, indent=1))


if __name__ == "__main__":
    main()
