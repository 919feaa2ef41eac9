"""Data loaders of keras-deeprnn.

`keras_deeprnn.data.music`: polyphonic-music piano rolls (JSB Chorales,
Nottingham, ... ``.mat``/``.pickle`` files, MIDI folders, music21's Bach
chorales) and a `tf.data` pipeline for next-frame prediction. The optional
dependencies (scipy, pretty_midi, music21) are imported only by the functions
that need them.

`keras_deeprnn.data.text`: sentence-classification sets (MR, delimited
"text, label" files, a folder per class, tfds ``imdb_reviews``/``glue/sst2``)
and the fold splits of the MR protocol.

`keras_deeprnn.data.conll`: tagged sentences (CoNLL-U treebanks, column
CoNLL files, tfds ``universal_dependencies``/``conll2003``) and a padded,
masked `tf.data` pipeline for sequence tagging.

`keras_deeprnn.data.corpus`: text files for language modelling (UTF-8
checks, the train/valid split, character and word vocabularies with
``<unk>``); `keras_deeprnn.data.streams`: one token sequence as parallel
streams of windows for stateful truncated BPTT.

`keras_deeprnn.data.timeseries`: multivariate series for forecasting (CSV
with a date column, the ETT splits, the training rows' scaler, windows).

`keras_deeprnn.data.registry`: the benchmark data sets by name (`jsb`, `mr`,
`ud-en-gum:test`, `etth1`, ...), each file with its canonical URL and
SHA-256, found in `$DEEPRNN_DATA_DIR` or Keras's cache or downloaded, and
checked; the loaders above take these names (`deeprnn data list`).

The most used names of each module are re-exported here; the rest (and each
module's own ``load_tfds``) live in the module.
"""

from keras_deeprnn.data import conll
from keras_deeprnn.data import corpus
from keras_deeprnn.data import music
from keras_deeprnn.data import registry
from keras_deeprnn.data import streams
from keras_deeprnn.data import text
from keras_deeprnn.data import timeseries
from keras_deeprnn.data.conll import ConllError
from keras_deeprnn.data.conll import Sentence
from keras_deeprnn.data.conll import load_tagging
from keras_deeprnn.data.conll import read_conll
from keras_deeprnn.data.conll import read_conllu
from keras_deeprnn.data.conll import tag_set
from keras_deeprnn.data.conll import tagging_dataset
from keras_deeprnn.data.music import HIGHEST_NOTE
from keras_deeprnn.data.music import LOWEST_NOTE
from keras_deeprnn.data.music import NUM_KEYS
from keras_deeprnn.data.music import SPLITS
from keras_deeprnn.data.music import MusicDataError
from keras_deeprnn.data.music import frame_count
from keras_deeprnn.data.music import load_bach_chorales
from keras_deeprnn.data.music import load_mat
from keras_deeprnn.data.music import load_midi_dir
from keras_deeprnn.data.music import load_music
from keras_deeprnn.data.music import load_pickle
from keras_deeprnn.data.music import midi_to_roll
from keras_deeprnn.data.music import piano_roll_dataset
from keras_deeprnn.data.music import rolls_to_midi
from keras_deeprnn.data.text import TextDataError
from keras_deeprnn.data.text import TextSet
from keras_deeprnn.data.text import kfold_indices
from keras_deeprnn.data.text import load_class_folders
from keras_deeprnn.data.text import load_delimited
from keras_deeprnn.data.text import load_mr
from keras_deeprnn.data.text import load_text
from keras_deeprnn.data.text import split_indices

__all__ = [
    "conll",
    "corpus",
    "streams",
    "music",
    "registry",
    "text",
    "timeseries",
    "ConllError",
    "Sentence",
    "load_tagging",
    "read_conll",
    "read_conllu",
    "tag_set",
    "tagging_dataset",
    "TextDataError",
    "TextSet",
    "kfold_indices",
    "load_class_folders",
    "load_delimited",
    "load_mr",
    "load_text",
    "split_indices",
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
