"""Subword vocabularies of the translation app (sentencepiece).

One vocabulary shared by both languages, or one for each, learned from the
training sentences and saved in the model folder beside `model.keras`
(`tokenizer.model`, or `source.model` and `target.model`), so a saved
model translates raw text.

Ids: 0 padding, 1 BOS, 2 EOS, 3 unknown (the ids `keras_deeprnn.seq2seq`
expects). Pieces fall back to UTF-8 bytes (`byte_fallback`), so a character
never seen in training still encodes and decodes back: `decode(encode(s))`
is `s` after sentencepiece's NFKC normalization (which also joins runs of
spaces and strips the ends).
"""

import io
import os
from pathlib import Path

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SHARED_FILE = "tokenizer.model"
SOURCE_FILE, TARGET_FILE = "source.model", "target.model"
MODEL_TYPES = ("unigram", "bpe")


def _train_proto(texts, vocab_size, model_type):
    import sentencepiece as spm

    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=writer,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        pad_id=PAD,
        bos_id=BOS,
        eos_id=EOS,
        unk_id=UNK,
        byte_fallback=True,
        # A small corpus may not hold `vocab_size` pieces: take what it has.
        hard_vocab_limit=False,
        num_threads=min(4, os.cpu_count() or 1),
        minloglevel=2,
    )
    return writer.getvalue()


def _processor(proto, name):
    import sentencepiece as spm

    try:
        return spm.SentencePieceProcessor(model_proto=proto)
    except RuntimeError as error:
        raise ValueError(f"{name} is not a sentencepiece model: {error}") from None


class Tokenizer:
    """Source and target subword vocabularies.

    Args:
        source_proto: The serialized sentencepiece model of the source.
        target_proto: That of the target; None: the source's (shared).
    """

    def __init__(self, source_proto, target_proto=None, names=("source", "target")):
        self.shared = target_proto is None
        self.source = _processor(source_proto, names[0])
        self.target = self.source if self.shared else _processor(target_proto, names[1])
        for name, sp in (("source", self.source), ("target", self.target)):
            ids = (sp.pad_id(), sp.bos_id(), sp.eos_id(), sp.unk_id())
            if ids != (PAD, BOS, EOS, UNK):
                raise ValueError(
                    f"the {name} vocabulary has pad/bos/eos/unk ids {ids}, not "
                    f"{(PAD, BOS, EOS, UNK)}: not a vocabulary of this app"
                )
        self.bos_id, self.eos_id, self.pad_id = BOS, EOS, PAD

    @classmethod
    def train(cls, source_texts, target_texts, vocab_size=8000, shared=True, model_type="unigram"):
        """Learns the vocabularies from training sentences.

        Args:
            source_texts, target_texts: Lists of sentences.
            vocab_size: Pieces of each vocabulary (at most: a small corpus
                yields fewer); the 256 byte pieces and the 4 special ids
                count among them.
            shared: One vocabulary of both languages' sentences.
            model_type: "unigram" or "bpe".
        """
        if model_type not in MODEL_TYPES:
            raise ValueError(f"unknown tokenizer type {model_type!r}; choose {MODEL_TYPES}")
        if vocab_size < 300:
            raise ValueError(
                f"--vocab-size must be >= 300 (256 byte pieces + others), got {vocab_size}"
            )
        if shared:
            return cls(_train_proto([*source_texts, *target_texts], vocab_size, model_type))
        return cls(
            _train_proto(source_texts, vocab_size, model_type),
            _train_proto(target_texts, vocab_size, model_type),
        )

    @classmethod
    def load(cls, folder):
        """The vocabularies saved in a model folder (`files()`)."""
        folder = Path(folder)
        if not folder.is_dir():  # MODEL_FOLDER/model.keras
            folder = folder.parent
        shared, source, target = (folder / f for f in (SHARED_FILE, SOURCE_FILE, TARGET_FILE))
        if shared.is_file():
            return cls(shared.read_bytes(), names=(str(shared), str(shared)))
        if source.is_file() and target.is_file():
            return cls(source.read_bytes(), target.read_bytes(), names=(str(source), str(target)))
        raise FileNotFoundError(
            f"{folder} has no vocabulary ({SHARED_FILE}, or {SOURCE_FILE} and {TARGET_FILE}): "
            "not a model folder of `python -m apps.translate train`"
        )

    def files(self):
        """`{file name: bytes}` to save in the model folder."""
        if self.shared:
            return {SHARED_FILE: self.source.serialized_model_proto()}
        return {
            SOURCE_FILE: self.source.serialized_model_proto(),
            TARGET_FILE: self.target.serialized_model_proto(),
        }

    @property
    def source_vocab_size(self):
        return self.source.get_piece_size()

    @property
    def target_vocab_size(self):
        return self.target.get_piece_size()

    def encode_source(self, texts):
        """Lists of source piece ids, without BOS or EOS."""
        return self.source.encode(list(texts))

    def encode_target(self, texts):
        """Lists of target piece ids, without BOS or EOS."""
        return self.target.encode(list(texts))

    def decode_target(self, rows):
        """Texts of target id rows, each cut at its first EOS; padding and
        BOS are dropped."""
        texts = []
        for row in rows:
            ids = [int(i) for i in row]
            if EOS in ids:
                ids = ids[: ids.index(EOS)]
            texts.append(self.target.decode([i for i in ids if i not in (PAD, BOS)]))
        return texts

    def source_pieces(self, ids):
        return [self.source.id_to_piece(int(i)) for i in ids]

    def target_pieces(self, ids):
        return [self.target.id_to_piece(int(i)) for i in ids]

    def describe(self):
        """What the metadata records."""
        return {
            "shared": self.shared,
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "files": sorted(self.files()),
        }
