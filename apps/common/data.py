"""What every app's `data.py` returns."""

import dataclasses
from typing import Any


@dataclasses.dataclass
class Datasets:
    """An app's data, ready for `model.fit`.

    Attributes:
        train, valid, test: `tf.data.Dataset`s of `(inputs, targets)`
            batches, or None where the data has no such split.
        info: What the model is built from and scored on besides the
            batches (the pieces, a vocabulary, a tag set, ...); its keys are
            the app's own.
    """

    train: Any
    valid: Any = None
    test: Any = None
    info: dict = dataclasses.field(default_factory=dict)
