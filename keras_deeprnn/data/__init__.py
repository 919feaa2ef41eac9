"""Data loaders of keras-deeprnn.

`keras_deeprnn.data.music`: polyphonic-music piano rolls (JSB Chorales,
Nottingham, ... ``.mat``/``.pickle`` files, MIDI folders, music21's Bach
chorales) and a `tf.data` pipeline for next-frame prediction. The optional
dependencies (scipy, pretty_midi, music21) are imported only by the functions
that need them.
"""

from keras_deeprnn.data.music import (
    DATASET_FILES,
    HIGHEST_NOTE,
    LOWEST_NOTE,
    NUM_KEYS,
    SPLITS,
    MusicDataError,
    frame_count,
    load_bach_chorales,
    load_mat,
    load_midi_dir,
    load_music,
    load_pickle,
    midi_to_roll,
    piano_roll_dataset,
    rolls_to_midi,
)

__all__ = [
    "DATASET_FILES",
    "HIGHEST_NOTE",
    "LOWEST_NOTE",
    "NUM_KEYS",
    "SPLITS",
    "MusicDataError",
    "frame_count",
    "load_bach_chorales",
    "load_mat",
    "load_midi_dir",
    "load_music",
    "load_pickle",
    "midi_to_roll",
    "piano_roll_dataset",
    "rolls_to_midi",
]
