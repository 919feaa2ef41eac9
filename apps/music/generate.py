"""One-to-many generation: sample or beam-search frames with carried state.

The trained sequence model is driven one frame at a time through its cells
(`layer.cell(x_t, states)`), so each new frame costs one recurrent step,
never a re-run of the prefix. Each frame is then drawn from the model's
output: 88 independent Bernoulli keys, or, for an RNN-NADE, the NADE's
joint distribution, key by key from the lowest.
"""

import wave
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_deeprnn.layers import NADE


class FrameStepper:
    """Runs a model of RNN / Dropout / per-frame layers one step at a time,
    carrying the recurrent states between calls.

    `step` returns the last per-frame layer's output: the logits of the
    keys, or for an RNN-NADE the conditioning of its `NADE` layer, which
    is `self.nade` (None otherwise).
    """

    def __init__(self, model):
        self.layers, self.nade = [], None
        for layer in model.layers:
            if isinstance(layer, (keras.layers.Dropout, keras.layers.InputLayer)):
                continue  # inference: identity
            if self.nade is not None:
                raise ValueError(
                    f"Layer '{layer.name}' comes after the NADE output '{self.nade.name}': "
                    "the NADE must be the last layer."
                )
            if isinstance(layer, NADE):
                self.nade = layer
                continue
            if isinstance(layer, keras.layers.RNN) and layer.go_backwards:
                raise ValueError(
                    f"Layer '{layer.name}' reads sequences backwards: a model "
                    "that sees the future cannot generate step by step."
                )
            if isinstance(layer, keras.layers.Bidirectional):
                raise ValueError(
                    f"Layer '{layer.name}' is bidirectional: it cannot generate step by step."
                )
            self.layers.append(layer)
        self.keys = self.nade.keys if self.nade else model.input_shape[-1]
        self._step = tf.function(self._step_impl, reduce_retracing=True)

    def initial_state(self, batch_size):
        return [
            layer.get_initial_state(batch_size)
            for layer in self.layers
            if isinstance(layer, keras.layers.RNN)
        ]

    def _step_impl(self, x, states):
        new_states, k = [], 0
        for layer in self.layers:
            if isinstance(layer, keras.layers.RNN):
                x, state = layer.cell(x, states[k], training=False)
                new_states.append(list(state) if isinstance(state, (list, tuple)) else [state])
                k += 1
            else:
                x = layer(x, training=False)
        return x, new_states

    def step(self, frames, states):
        """frames (batch, keys) -> (output (batch, ...), new states): the
        logits of the next frame, or the NADE's conditioning."""
        logits, states = self._step(tf.convert_to_tensor(frames, tf.float32), states)
        return logits.numpy(), states


class _Bernoulli:
    """Independent keys: the stepper's output holds their logits."""

    def draw(self, logits, uniform, temperature=1.0):
        return (uniform < _sigmoid(logits / temperature)).astype(np.float32)

    def log_prob(self, frames, logits):
        """frames (beams, candidates, keys), logits (beams, keys)."""
        return _log_prob(frames, logits[:, None])


class _Joint:
    """An RNN-NADE: the stepper's output conditions the NADE."""

    def __init__(self, nade):
        self.nade = nade
        self._draw = tf.function(nade.sample, reduce_retracing=True)
        self._log_prob = tf.function(nade.log_prob, reduce_retracing=True)

    def draw(self, conditioning, uniform, temperature=1.0):
        return self._draw(
            tf.convert_to_tensor(conditioning, tf.float32),
            tf.convert_to_tensor(uniform, tf.float32),
            temperature,
        ).numpy()

    def log_prob(self, frames, conditioning):
        """frames (beams, candidates, keys), conditioning (beams, features)."""
        conditioning = np.broadcast_to(
            conditioning[:, None], frames.shape[:2] + conditioning.shape[-1:]
        )
        return self._log_prob(
            tf.convert_to_tensor(conditioning, tf.float32), tf.convert_to_tensor(frames, tf.float32)
        ).numpy()


def _output(stepper):
    return _Joint(stepper.nade) if stepper.nade else _Bernoulli()


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _log_prob(frames, logits):
    """log P(frames | logits) under independent Bernoulli keys, per row."""
    # log sigmoid(z) = -softplus(-z); log(1 - sigmoid(z)) = -softplus(z)
    return -np.sum(
        frames * np.logaddexp(0, -logits) + (1 - frames) * np.logaddexp(0, logits),
        axis=-1,
    )


def _prime(stepper, primer, batch_size):
    states = stepper.initial_state(batch_size)
    # With no primer the model starts from one silent frame.
    primer = (
        np.zeros((1, stepper.keys), np.float32) if primer is None or len(primer) == 0 else primer
    )
    logits = None
    for frame in np.asarray(primer, np.float32):
        logits, states = stepper.step(np.repeat(frame[None], batch_size, 0), states)
    return logits, states


def sample(model, frames, primer=None, temperature=1.0, seed=0):
    """Samples `frames` new frames after `primer` (frames, keys) or silence.

    Each key of the next frame is drawn from Bernoulli(sigmoid(logit / T)),
    for an RNN-NADE with the logit given the keys drawn before it.

    Returns:
        The piano roll (len(primer) + frames, keys), primer included.
    """
    _check(frames, temperature)
    stepper = FrameStepper(model)
    output = _output(stepper)
    rng = np.random.default_rng(seed)
    logits, states = _prime(stepper, primer, 1)
    out = []
    for _ in range(frames):
        frame = output.draw(logits, rng.random((1, stepper.keys)), temperature)
        out.append(frame[0])
        logits, states = stepper.step(frame, states)
    return _join(primer, out, stepper.keys)


def beam_search(model, frames, primer=None, beam_width=4, candidates=8, temperature=1.0, seed=0):
    """Beam search over frames (Boulanger-Lewandowski et al. 2012, Sec. 4).

    Each beam proposes its most likely frame (for an RNN-NADE: each key at
    its more likely value given the keys before it) plus `candidates - 1`
    frames sampled at `temperature`; the `beam_width` distinct continuations with
    the highest total log-likelihood (at temperature 1) are kept; all beams
    step together as one batch.

    Returns:
        The best piano roll (len(primer) + frames, keys), primer included.
    """
    _check(frames, temperature)
    if beam_width < 1 or candidates < 1:
        raise ValueError("beam_width and candidates must be >= 1.")
    stepper = FrameStepper(model)
    output = _output(stepper)
    rng = np.random.default_rng(seed)
    logits, states = _prime(stepper, primer, 1)
    scores = np.zeros(1)
    paths = [[]]
    for _ in range(frames):
        beams = len(paths)
        proposals = np.empty((beams, candidates, stepper.keys), np.float32)
        proposals[:, 0] = output.draw(logits, np.full((beams, stepper.keys), 0.5))
        if candidates > 1:
            drawn = output.draw(
                np.repeat(logits, candidates - 1, axis=0),
                rng.random((beams * (candidates - 1), stepper.keys)),
                temperature,
            )
            proposals[:, 1:] = drawn.reshape(beams, candidates - 1, stepper.keys)
        totals = scores[:, None] + output.log_prob(proposals, logits)
        chosen, seen = [], set()
        for flat in np.argsort(-totals, axis=None):
            b, c = divmod(int(flat), candidates)
            key = (b, proposals[b, c].tobytes())
            if key not in seen:
                seen.add(key)
                chosen.append((b, c))
            if len(chosen) == beam_width:
                break
        parents = np.array([b for b, _ in chosen])
        next_frames = np.stack([proposals[b, c] for b, c in chosen])
        scores = np.array([totals[b, c] for b, c in chosen])
        paths = [paths[b] + [next_frames[i]] for i, b in enumerate(parents)]
        states = tf.nest.map_structure(lambda s, rows=parents: tf.gather(s, rows), states)
        logits, states = stepper.step(next_frames, states)
    return _join(primer, paths[int(np.argmax(scores))], stepper.keys)


def _check(frames, temperature):
    if frames < 1:
        raise ValueError(f"The number of frames must be >= 1, got {frames}.")
    if not temperature > 0:
        raise ValueError(f"The temperature must be > 0, got {temperature}.")


def _join(primer, frames, keys):
    parts = [] if primer is None else [np.asarray(primer, np.float32).reshape(-1, keys)]
    parts.append(np.asarray(frames, np.float32).reshape(-1, keys))
    return np.concatenate(parts, axis=0)


def save_piano_roll_png(roll, path, title=None, lowest_note=21):
    """Writes a piano-roll picture: time left to right, pitch bottom to top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, len(roll) / 12), 4), dpi=80)
    ax.imshow(
        np.asarray(roll).T,
        aspect="auto",
        origin="lower",
        cmap="Greys",
        interpolation="nearest",
        extent=(0, len(roll), lowest_note - 0.5, lowest_note + roll.shape[1] - 0.5),
    )
    ax.set_xlabel("frame")
    ax.set_ylabel("MIDI note")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _organ(phase):
    """A tone of three harmonics (an organ-like timbre, apt for chorales)."""
    return (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)) / 1.75


def save_wav(midi, path, sample_rate=22050):
    """Renders a `pretty_midi.PrettyMIDI` as a 16-bit mono WAV file with
    pretty_midi's additive synthesis (each note an `_organ` tone fading out
    over its last 0.1 s; one second of silence after the last note), scaled
    to a peak of 0.8.

    Returns:
        The duration in seconds.
    """
    waves = [inst.synthesize(fs=sample_rate, wave=_organ) for inst in midi.instruments]
    audio = np.zeros(max([len(w) for w in waves], default=sample_rate))
    for w in waves:
        audio[: len(w)] += w
    peak = np.abs(audio).max()
    if peak > 0:
        audio *= 0.8 / peak
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(np.round(audio * 32767).astype("<i2").tobytes())
    return len(audio) / sample_rate


def write_music(roll, out, seconds_per_frame, title):
    """`OUT.mid`, `OUT.wav` and `OUT.png` of a generated piano roll.

    Returns:
        The three paths.
    """
    from keras_deeprnn.data import music

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_suffix(suffix) for suffix in (".mid", ".wav", ".png")]
    midi = music.rolls_to_midi(roll, paths[0], steps_per_second=1.0 / seconds_per_frame)
    save_wav(midi, paths[1])
    save_piano_roll_png(roll, paths[2], title=title)
    return paths
