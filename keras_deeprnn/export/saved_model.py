"""SavedModel export: serving signatures that need no keras_deeprnn."""

import keras
import tensorflow as tf

from keras_deeprnn.export._graph import ExportError
from keras_deeprnn.export._graph import check_model
from keras_deeprnn.export.tflite import _Exporter
from keras_deeprnn.export.tflite import _input_name
from keras_deeprnn.layers import _native


# Traced without the CPU kernels: the file must run without this package.
@_native.off()
def export_saved_model(model, path):
    """Writes a TensorFlow SavedModel of `model` (`keras.export.ExportArchive`).

    Signatures, all with dynamic batch (and time where there is one):

    - `serve` (also `serving_default`): the model's inputs
      `(batch, time, ...)` to its outputs, exactly `model(x)`; the model's
      own masking (e.g. `Embedding(mask_zero=True)`) applies.
    - `step` (only for models that stream, see `export_tflite`): one time
      step `(batch, ...)` plus every recurrent layer's states
      `<layer>_state_<k>` to `output_<i>` and the new states.

    The SavedModel is plain TensorFlow: `tf.saved_model.load(path)` runs it
    in a process that never imports Keras or keras_deeprnn.

    Args:
        model: A built Keras model of sequences.
        path: The folder to write.

    Returns:
        A dict: `path`, `signatures` (name -> input names).
    """
    check_model(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    specs = [
        tf.TensorSpec((None, None) + tuple(t.shape[2:]), t.dtype, name=_input_name(t, i))
        for i, t in enumerate(model.inputs)
    ]

    def serve(*inputs):
        return model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

    archive.add_endpoint("serve", serve, input_signature=specs)
    signatures = {"serve": [s.name for s in specs]}
    try:
        exporter = _Exporter(model, "streaming", None, None, unroll=False)
    except ExportError:
        exporter = None  # The model does not stream (Bidirectional, pooling).
    if exporter is not None:
        archive.add_endpoint("step", exporter.function)
        signatures["step"] = list(exporter.names)
    archive.write_out(str(path), verbose=False)
    return {"path": str(path), "signatures": signatures}
