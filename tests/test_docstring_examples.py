"""The examples in the library's docstrings run and print what they say."""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import keras_deeprnn

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(keras_deeprnn.__path__, "keras_deeprnn.")
    if m.name != "keras_deeprnn.demo"
)


# Examples may use any public name of the library, as a user's code would.
PUBLIC = {"np": np, "keras": keras}
for _package in ("cells", "layers", "models", "metrics", "training", "seq2seq"):
    _module = importlib.import_module(f"keras_deeprnn.{_package}")
    PUBLIC.update({n: getattr(_module, n) for n in dir(_module) if not n.startswith("_")})


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs=PUBLIC, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
