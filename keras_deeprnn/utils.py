"""Helpers over Keras models."""

import keras


def sublayers(layer):
    """Every layer nested in `layer` (not `layer` itself), depth first, once each.

    Keras 3 has no public list of them: `Model.layers` is one level deep and
    misses what wrappers hold. This follows a model's `layers`, then every
    public attribute that holds a layer or a list, tuple or dict of layers
    (`Bidirectional.forward_layer`, `TimeDistributed.layer`, `RNN.cell`,
    `StackedRNNCells.cells`, a nested model, ...); private ones are Keras's
    bookkeeping (such as the functional model inside a `Sequential`).
    """
    seen = {id(layer)}
    found = []

    def visit(value):
        if isinstance(value, keras.layers.Layer):
            if id(value) not in seen:
                seen.add(id(value))
                found.append(value)
                visit_children(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)

    def visit_children(parent):
        if isinstance(parent, keras.Model):
            visit(parent.layers)
        for name, value in vars(parent).items():
            if not name.startswith("_"):
                visit(value)

    visit_children(layer)
    return found
