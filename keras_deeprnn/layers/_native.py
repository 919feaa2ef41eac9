"""The CPU kernels of `_fused`'s two loops (`kernels/sequence.cc`).

The source is compiled against the installed TensorFlow on first use, once
per machine, with the C++ compiler TensorFlow's custom ops need (`$CXX`,
default `g++`), and cached in `$KERAS_DEEPRNN_CACHE` (default
`~/.cache/keras_deeprnn`). Where that fails (no compiler, other platform)
a warning says why and `_fused` runs its TensorFlow loops, which compute
the same functions. `KERAS_DEEPRNN_NATIVE=0` turns the kernels off.

The kernels are used only on the CPU outside XLA, in float32, and not
while a SavedModel or TFLite file is written (`off()`): a graph with them
needs this package's library to run.
"""

import contextlib
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import tensorflow as tf

from keras_deeprnn import _compat

SOURCE = Path(__file__).with_name("kernels") / "sequence.cc"
# Compiler flags, best first: the host's vector units (without AVX512-FP16,
# which the Eigen bundled with TensorFlow does not compile with under GCC 12).
_ARCH_FLAGS = (["-march=native", "-mno-avx512fp16"], ["-march=native"], [])
# No fused multiply-add contraction: results must not depend on which of
# Eigen's code paths (vector or one element) ran.
_FLAGS = ["-shared", "-fPIC", "-O3", "-DNDEBUG", "-ffp-contract=off", "-w"]

_lock = threading.Lock()
_state = {"module": None, "tried": False, "error": None, "off": 0}


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def _library_path():
    """The cached library for this source, TensorFlow and CPU."""
    key = hashlib.sha256(
        "\0".join(
            [
                SOURCE.read_text(),
                " ".join(_FLAGS),
                tf.__version__,
                " ".join(tf.sysconfig.get_compile_flags()),
                platform.machine(),
                _cpu_flags(),
            ]
        ).encode()
    ).hexdigest()[:16]
    root = Path(os.environ.get("KERAS_DEEPRNN_CACHE") or Path.home() / ".cache" / "keras_deeprnn")
    return root / f"sequence-{key}.so"


def _build(path):
    """Compiles SOURCE into `path` (written under a temporary name, then
    renamed, so that a concurrent or interrupted build leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler = os.environ.get("CXX", "g++")
    errors = []
    for arch in _ARCH_FLAGS:
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
        os.close(fd)
        command = [
            compiler,
            *_FLAGS,
            *arch,
            str(SOURCE),
            "-o",
            tmp,
            *tf.sysconfig.get_compile_flags(),
            *tf.sysconfig.get_link_flags(),
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            os.unlink(tmp)
            raise RuntimeError(f"cannot run {compiler!r}: {e}") from e
        if result.returncode == 0:
            os.replace(tmp, path)
            return
        os.unlink(tmp)
        errors.append(result.stderr.strip().splitlines()[-1:] or ["(no message)"])
    raise RuntimeError(f"{compiler} failed: {errors[-1][0]}")


def _build_saying_so(path):
    """`_build`, on one line of stderr saying what it does and how long it took
    (the first training step waits for it)."""
    started = time.monotonic()
    sys.stderr.write(
        f"keras_deeprnn: compiling the C++ kernels of the recurrent layers for TensorFlow "
        f"{tf.__version__} (first use on this machine, about 30 s; cached in {path.parent}) ... "
    )
    sys.stderr.flush()
    try:
        _build(path)
    except Exception:
        sys.stderr.write("failed\n")
        raise
    sys.stderr.write(f"done in {time.monotonic() - started:.0f} s\n")


def module():
    """The loaded op library, or None where it cannot be built (warned once)."""
    if _state["tried"]:
        return _state["module"]
    with _lock:
        if not _state["tried"]:
            try:
                path = _library_path()
                if not path.exists():
                    _build_saying_so(path)
                _state["module"] = tf.load_op_library(str(path))
            except Exception as e:  # noqa: BLE001 - any failure means: use the TF loops
                _state["error"] = str(e)
                warnings.warn(
                    "keras_deeprnn: the CPU sequence kernels are not available "
                    f"({e}); the recurrent layers use TensorFlow loops instead.",
                    stacklevel=3,
                )
            _state["tried"] = True
    return _state["module"]


@contextlib.contextmanager
def off():
    """Within this block the layers trace without the kernels (exports)."""
    with _lock:
        _state["off"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["off"] -= 1


def has_gpu():
    """Whether TensorFlow sees a GPU (asked once): the layers then run
    cuDNN or TensorFlow loops, never these kernels."""
    if "gpu" not in _state:
        _state["gpu"] = bool(tf.config.list_logical_devices("GPU"))
    return _state["gpu"]


def exporting():
    """Whether an export traces (`off()` or a SavedModel save)."""
    return bool(_state["off"]) or _compat.in_save_context()


def usable(dtype):
    """Whether the kernels run here: enabled, float32, on a CPU-only
    machine, outside XLA and outside exports, and built."""
    if (
        exporting()
        or os.environ.get("KERAS_DEEPRNN_NATIVE", "1") == "0"
        or dtype != tf.float32
        or has_gpu()
        or _compat.in_xla_context()
    ):
        return False
    return module() is not None


def _attrs(spec, kind, leak, zero_output):
    attrs = {"zero_output": zero_output}
    if spec is None:
        attrs.update(kind=kind, leak=float(leak))
    else:
        attrs.update(
            kind="lstm",
            gates="".join(spec.gates),
            peepholes="".join(spec.peepholes),
            cifg=spec.cifg,
            input_activation=spec.input_activation,
            output_activation=spec.output_activation,
            fgr=spec.fgr,
        )
    return attrs


def _optional(x):
    return tf.zeros((0,)) if x is None else x


def _mask(mask):
    """The (T, B) mask the ops read; empty for none."""
    return tf.zeros((0, 0), tf.bool) if mask is None else mask[..., 0]


def forward(spec, kind, leak, zero_output, keep, P, states, R, b_rec, extra, rmask, mask):
    """`_fused._forward` as one op: (final states, [Y, saved, *kept
    previous states]) with the same layout; `spec` is the LSTM variant's
    `_LSTMVariant` (None for the other kinds)."""
    y, saved, prev, final = module().deeprnn_sequence_forward(
        p=P,
        states=list(states),
        r=R,
        b_rec=_optional(b_rec),
        extra=list(extra),
        rmask=_optional(rmask),
        mask=_mask(mask),
        keep=keep,
        **_attrs(spec, kind, leak, zero_output),
    )
    if not keep:
        return final, [y]
    steps, batch = P.shape[0], P.shape[1]
    saved.set_shape((steps, batch, None))
    # Without a mask h_{t-1} is Y one step back: the op leaves prev[0] empty.
    first = 0 if mask is not None else 1
    for p, s in zip(prev[first:], states[first:]):
        p.set_shape((steps, batch, s.shape[-1]))
    return final, [y, saved] + list(prev[first:])


def backward(
    spec,
    kind,
    leak,
    zero_output,
    dY,
    d_final,
    R,
    extra,
    rmask,
    mask,
    prev_seqs,
    saved,
    h0,
    separate,
):
    """`_fused`'s backward loop as one op: (dP, dA or None where it equals
    dP (`separate` False), the initial states' gradients)."""
    dp, da, d_initial = module().deeprnn_sequence_backward(
        dy=dY,
        d_final=list(d_final),
        saved=saved,
        prev=list(prev_seqs),
        h0=h0,
        r=R,
        extra=list(extra),
        rmask=_optional(rmask),
        mask=_mask(mask),
        **_attrs(spec, kind, leak, zero_output),
    )
    dp.set_shape(dY.shape[:2] + (None,))
    if not separate:
        return dp, None, list(d_initial)
    da.set_shape(dY.shape[:2] + (R.shape[-1],))
    return dp, da, list(d_initial)
