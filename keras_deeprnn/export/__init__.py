"""Deployment export: TFLite with builtin ops only, and SavedModel.

- `export_tflite(model, path, mode="sequence"|"streaming", quantize=...)`:
  a `.tflite` file that the stock LiteRT interpreter runs (no Flex ops),
  checked against Keras by `verify_tflite`;
- `export_saved_model(model, path)`: serving signatures with dynamic batch
  and time that load with plain `tf.saved_model.load`;
- `StreamingModel(model)`: the streaming export's function run by
  TensorFlow (one step, states explicit), for generation in Python;
- `write_export(model, folder, name, ...)`: both into an export folder with
  a `manifest.json` (versions, metrics, input/output specs, sha256 of every
  file), checked by `check_manifest` / `load_export`.

See docs/export.md for the modes, tolerances, latencies and sizes.
"""

from keras_deeprnn.export._graph import ExportError
from keras_deeprnn.export.manifest import check_manifest
from keras_deeprnn.export.manifest import load_export
from keras_deeprnn.export.manifest import write_export
from keras_deeprnn.export.manifest import write_manifest
from keras_deeprnn.export.saved_model import export_saved_model
from keras_deeprnn.export.streaming import StreamingModel
from keras_deeprnn.export.tflite import MODES
from keras_deeprnn.export.tflite import QUANTIZATIONS
from keras_deeprnn.export.tflite import TOLERANCES
from keras_deeprnn.export.tflite import export_tflite
from keras_deeprnn.export.tflite import load_tflite
from keras_deeprnn.export.tflite import verify_tflite

__all__ = [
    "ExportError",
    "StreamingModel",
    "MODES",
    "QUANTIZATIONS",
    "TOLERANCES",
    "export_tflite",
    "verify_tflite",
    "load_tflite",
    "export_saved_model",
    "write_export",
    "write_manifest",
    "check_manifest",
    "load_export",
]
