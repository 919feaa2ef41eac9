"""The export folder: `manifest.json` with the sha256 of every file.

Layout of `saved_models/<name>/export/` (written by `write_export`, the
`deeprnn export` command and the apps' `export` subcommands):

    manifest.json                 model name, versions, metrics, exports, hashes
    model-sequence.tflite         mode "sequence", float32
    model-streaming-int8.tflite   mode "streaming", int8 (one per mode/quantization)
    saved_model/                  the SavedModel (`serve`, `step` signatures)

`check_manifest` refuses a folder whose files do not match the manifest
(changed, missing, or added after the export); `load_export` checks, then
loads one export.
"""

import datetime
import hashlib
import json
import os
from pathlib import Path

import keras
import tensorflow as tf

import keras_deeprnn
from keras_deeprnn.export._graph import ExportError
from keras_deeprnn.export._graph import check_model
from keras_deeprnn.export.saved_model import export_saved_model
from keras_deeprnn.export.tflite import export_tflite
from keras_deeprnn.export.tflite import load_tflite

MANIFEST = "manifest.json"
FORMAT = "keras-deeprnn-export/1"


def tflite_name(mode, quantize=None, fused=False):
    return (
        f"model-{mode}"
        + ("-fused" if fused else "")
        + (f"-{quantize}" if quantize else "")
        + ".tflite"
    )


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder):
    folder = Path(folder)
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST
    )


def _litert_version():
    try:
        from importlib.metadata import version

        return version("ai-edge-litert")
    except Exception:  # Not installed: the SavedModel needs no LiteRT.
        return None


def write_manifest(folder, name, exports, metrics=None, model_inputs=None):
    """Writes `folder/manifest.json` describing `exports` and hashing every
    file of `folder`; entries of an earlier manifest for other files are
    kept."""
    folder = Path(folder)
    path = folder / MANIFEST
    previous = []
    if path.is_file():
        previous = json.loads(path.read_text()).get("exports", [])
    files = _files(folder)
    written = {e["file"] for e in exports}
    kept = [
        e
        for e in previous
        if e["file"] not in written
        and any(f == e["file"] or f.startswith(e["file"] + "/") for f in files)
    ]
    manifest = {
        "format": FORMAT,
        "model": name,
        "inputs": model_inputs,
        "metrics": metrics or {},
        "library_version": keras_deeprnn.__version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "litert_version": _litert_version(),
        "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "exports": kept + list(exports),
        "files": {f: _sha256(folder / f) for f in files},
    }
    temporary = folder / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary, path)
    return manifest


def check_manifest(folder):
    """The manifest of an export folder, after checking every file's sha256.

    Raises:
        ExportError: No or unreadable manifest, a missing file, a file whose
            sha256 differs from the manifest (changed or truncated after the
            export), or a file the manifest does not list.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ExportError(f"{folder} has no {MANIFEST}; it is not an export folder.")
    try:
        manifest = json.loads(path.read_text())
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as error:
        raise ExportError(f"{path} is not a valid manifest: {error}") from error
    if manifest.get("format") != FORMAT:
        raise ExportError(f"{path} has format {manifest.get('format')!r}, expected {FORMAT!r}.")
    for name, digest in files.items():
        file = folder / name
        if not file.is_file():
            raise ExportError(f"{file} is listed in {MANIFEST} but missing.")
        if _sha256(file) != digest:
            raise ExportError(
                f"{file} does not match {MANIFEST} (sha256 mismatch): it was "
                "changed or truncated after the export; export again."
            )
    extra = sorted(set(_files(folder)) - set(files))
    if extra:
        raise ExportError(f"{folder} holds files not in {MANIFEST}: {', '.join(extra)}.")
    return manifest


def load_export(folder, file=None):
    """Checks an export folder (`check_manifest`) and loads one export.

    Args:
        folder: The export folder.
        file: The export's file name (e.g. "model-streaming-int8.tflite" or
            "saved_model"); default the first export of the manifest.

    Returns:
        (loaded, entry): a LiteRT interpreter (`.tflite`) or the
        `tf.saved_model.load` object, and the export's manifest entry.
    """
    manifest = check_manifest(folder)
    entries = {e["file"]: e for e in manifest["exports"]}
    if not entries:
        raise ExportError(f"{folder}/{MANIFEST} lists no exports.")
    if file is None:
        file = manifest["exports"][0]["file"]
    if file not in entries:
        raise ExportError(f"{folder} has no export {file!r}; it has {', '.join(entries)}.")
    path = Path(folder) / file
    if entries[file]["format"] == "tflite":
        return load_tflite(path), entries[file]
    return tf.saved_model.load(str(path)), entries[file]


def write_export(
    model,
    folder,
    name,
    tflite=(("sequence", None),),
    saved_model=True,
    representative_data=None,
    max_length=None,
    metrics=None,
    fuse_lstm=False,
    lengths=True,
):
    """Exports `model` into `folder` and writes the manifest.

    Args:
        model: A built Keras model of sequences.
        folder: The export folder (e.g. `saved_models/<name>/export`).
        name: The model's name, for the manifest.
        tflite: (mode, quantize) pairs, each a `.tflite` file (see
            `export_tflite`).
        saved_model: Also write `saved_model/`.
        representative_data, max_length: For `export_tflite`.
        metrics: The model's metrics, copied into the manifest.
        fuse_lstm: Sequence-mode files with the LSTM layers as TFLite's
            fused LSTM op (`export_tflite(fuse_lstm=True, lengths=False)`),
            named `model-sequence-fused[-QUANTIZE].tflite`.
        lengths: Sequence-mode files take a `lengths` input (leave it out
            for models of whole fixed-length windows).

    Returns:
        The manifest (a dict).
    """
    check_model(model)  # before anything is written
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    exports = []
    for mode, quantize in tflite:
        fused = fuse_lstm and mode == "sequence"
        file = tflite_name(mode, quantize, fused)
        options = dict(fuse_lstm=True, lengths=False) if fused else {"lengths": lengths}
        report = export_tflite(
            model,
            folder / file,
            mode=mode,
            quantize=quantize,
            representative_data=representative_data,
            max_length=max_length,
            **options,
        )
        exports.append(
            {
                "file": file,
                "format": "tflite",
                "mode": mode,
                "quantize": quantize,
                "inputs": report["inputs"],
                "outputs": report["outputs"],
                "ops": sorted(set(report["ops"])),
                "max_abs_diff": report["max_abs_diff"],
                "tolerance": report["tolerance"],
                **(
                    {"fused_lstm": report["fused_lstm"], "unfused_lstm": report["unfused_lstm"]}
                    if fused
                    else {}
                ),
            }
        )
    if saved_model:
        report = export_saved_model(model, folder / "saved_model")
        exports.append(
            {
                "file": "saved_model",
                "format": "saved_model",
                "signatures": report["signatures"],
            }
        )
    inputs = [{"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)} for t in model.inputs]
    return write_manifest(folder, name, exports, metrics=metrics, model_inputs=inputs)
