"""The translation model: `keras_deeprnn.seq2seq.Seq2Seq` on the vocabularies
of `apps.translate.tokenizer`, compiled with its masked, label-smoothed
cross-entropy."""

import keras

from keras_deeprnn.seq2seq.model import ARCHS
from keras_deeprnn.seq2seq.model import ATTENTIONS
from keras_deeprnn.seq2seq.model import DECODERS

__all__ = ["ARCHS", "ATTENTIONS", "DECODERS", "build_model"]


def build_model(args, tokenizer, learning_rate=None):
    """A built, compiled `Seq2Seq` of the `train` options `args`; Adam's
    learning rate `learning_rate` (a number or a schedule), else `args.lr`."""
    import numpy as np

    from keras_deeprnn.seq2seq import MaskedAccuracy
    from keras_deeprnn.seq2seq import MaskedCrossEntropy
    from keras_deeprnn.seq2seq import Seq2Seq

    model = Seq2Seq(
        tokenizer.source_vocab_size,
        tokenizer.target_vocab_size,
        embedding_dim=args.embedding_dim,
        units=args.units,
        cell=args.cell,
        arch=args.arch,
        depth=args.depth,
        bidirectional=not args.unidirectional,
        attention=args.attention,
        decoder=args.decoder,
        dropout=args.dropout,
        pad_id=tokenizer.pad_id,
        bos_id=tokenizer.bos_id,
        eos_id=tokenizer.eos_id,
        # The longest output of generate: a target within --max-length, EOS included.
        max_length=args.max_length,
        name=f"translate_{args.cell}_{args.arch}".replace("-", "_"),
    )
    ids = np.full((1, 2), tokenizer.eos_id, "int32")
    model((ids, ids))  # built: fit's BackupAndRestore needs the weights
    model.compile(
        optimizer=keras.optimizers.Adam(
            args.lr if learning_rate is None else learning_rate, clipnorm=args.clipnorm or None
        ),
        loss=MaskedCrossEntropy(pad_id=tokenizer.pad_id, label_smoothing=args.label_smoothing),
        metrics=[MaskedAccuracy(pad_id=tokenizer.pad_id)],
    )
    return model
