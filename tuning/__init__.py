"""Hyperparameter and architecture searches with KerasTuner.

- `tuning.hypermodels`: a `keras_tuner.HyperModel` per app (music,
  sentiment, tagging) over cells, architectures, sizes and optimiser settings.
- `tuning.search`: `python -m tuning.search APP ...`, one search (random,
  Bayesian or Hyperband; `tasks` runs the evolutionary cell search).
- `tuning.distributed`: `python -m tuning.distributed APP --workers N ...`,
  the same search with KerasTuner's chief and N workers on loopback.
- `tuning.evolution`, `tuning.tasks`: the evolutionary search of cell genomes
  (Jozefowicz et al. 2015).
"""

import importlib

#: The apps' package: the top-level `apps` in a checkout, `keras_deeprnn.apps`
#: where the wheel installed both folders inside `keras_deeprnn`.
APPS_PACKAGE = "keras_deeprnn.apps" if __name__.startswith("keras_deeprnn.") else "apps"


def apps_module(name):
    """The module `apps.NAME` (e.g. `"music.model"`) of the apps beside this package."""
    return importlib.import_module(f"{APPS_PACKAGE}.{name}")
