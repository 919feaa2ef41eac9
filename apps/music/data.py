"""The music app's data: piano rolls of whole pieces.

`add_arguments(parser)` declares the data options, `datasets(args)` loads
them (`keras_deeprnn.data.music`) as batches of whole pieces: inputs
x_1..x_{T-1}, targets x_2..x_T, padding masked.
"""

from ..common.cli import non_negative_int
from ..common.cli import positive_int
from ..common.data import Datasets

SPLITS = ("train", "valid", "test")


def add_arguments(p, training=False):
    """`--data`, `--batch-size`, and with `training` `--max-length` and
    `--transpose`."""
    p.add_argument(
        "--data",
        default="bach",
        help="bach (music21's chorales, offline; the default), jsb, nottingham, musedata, "
        "piano-midi (the benchmark .mat files: `deeprnn data list`), PATH.mat, "
        "PATH.pickle, or a folder of MIDI files",
    )
    p.add_argument("--batch-size", type=positive_int, default=16, help="pieces per batch")
    if training:
        p.add_argument(
            "--max-length",
            type=positive_int,
            default=None,
            help="cut training pieces into windows of at most this many frames (default: "
            "whole pieces); validation and test always score whole pieces",
        )
        p.add_argument(
            "--transpose",
            type=non_negative_int,
            default=0,
            metavar="SEMITONES",
            help="shift each training sequence up or down by a random number of at most "
            "this many semitones, drawn anew every epoch (augmentation; default 0: none)",
        )


def datasets(args):
    """`Datasets` of `args.data`; `info["pieces"]` maps each split to its
    piano rolls (arrays `(frames, 88)`)."""
    from keras_deeprnn.data import music

    pieces = music.load_music(args.data, verbose=1)
    batches = {
        split: music.piano_roll_dataset(
            pieces[split],
            args.batch_size,
            shuffle=split == "train",
            seed=getattr(args, "seed", 0),
            # Windows speed training up; scores are of whole pieces, as published.
            max_length=getattr(args, "max_length", None) if split == "train" else None,
            transpose=getattr(args, "transpose", 0) if split == "train" else 0,
        )
        for split in SPLITS
    }
    return Datasets(**batches, info={"pieces": pieces})
