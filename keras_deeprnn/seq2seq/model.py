"""`Seq2Seq`: an attention encoder-decoder of the library's cells."""

import collections

import keras
import numpy as np
from keras import ops

from keras_deeprnn import cells as cell_registry
from keras_deeprnn.cells.base import check_choice
from keras_deeprnn.cells.base import check_rate
from keras_deeprnn.cells.base import check_units
from keras_deeprnn.layers._units import check_bool
from keras_deeprnn.layers._units import check_int
from keras_deeprnn.layers.rnn import RNN
from keras_deeprnn.layers.stacked_cells import StackedCells
from keras_deeprnn.models.architecture import resolve
from keras_deeprnn.seq2seq import search
from keras_deeprnn.seq2seq.attention import BahdanauAttention
from keras_deeprnn.seq2seq.attention import LuongAttention
from keras_deeprnn.seq2seq.decoder import AttentionCell
from keras_deeprnn.seq2seq.decoder import FastAttentionDecoder
from keras_deeprnn.seq2seq.decoder import as_tensor
from keras_deeprnn.seq2seq.decoder import state_sizes
from keras_deeprnn.seq2seq.decoder import zeros

ATTENTIONS = ("bahdanau", "luong-dot", "luong-general", "luong-concat")
DECODERS = ("cell", "fast")
ARCHS = ("stack", "srnn", "dt", "dts")
BRIDGES = ("dense", "zeros")
METHODS = ("greedy", "sample", "beam")

Seq2SeqState = collections.namedtuple("Seq2SeqState", ["memory", "keys", "mask", "states"])
Seq2SeqState.__doc__ = """What the decoder reads: the encoder's outputs `memory` (batch, S, D),
their attention `keys` (batch, S, K), the source `mask` (batch, S) (float, 1 at
real tokens) and the decoder's recurrent `states` (a list of (batch, size))."""


def _check_id(name, value, vocabulary):
    value = check_int(name, value, 0)
    if value >= vocabulary:
        raise ValueError(
            f"Argument `{name}`={value} is not a token id of the target "
            f"vocabulary of {vocabulary} ids."
        )
    return value


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class Seq2Seq(keras.Model):
    """Encoder-decoder with attention (Bahdanau et al. 2015; Luong et al. 2015).

    Source ids x_1..x_S and target ids y_1..y_T (id `pad_id` = padding,
    from which the masks come):

        h_1..h_S = Encoder(E_src x)           bidirectional, `depth` layers
        s_0 = tanh(W_b [->h_S; <-h_1])        the bridge, per decoder state
        h~_t = Decoder(E_tgt y_{t-1}, s_{t-1}, attention over h)
        p(y_t | y_<t, x) = softmax(h~_t W_o + b_o)

    The encoder is any cell and architecture of the library, each layer a
    `keras_deeprnn.layers.RNN` (fused kernels for the LSTM, GRU, RNN and
    MUT cells), wrapped in `keras.layers.Bidirectional`, with the source
    mask. The bridge maps every final state of the encoder (the two
    directions concatenated) to the decoder's state of the same index with a
    `Dense` + tanh (`bridge="dense"`), or the decoder starts from zeros
    (`bridge="zeros"`).

    Decoders (see `keras_deeprnn.seq2seq.decoder`):

    - "cell": an `AttentionCell` in stock `keras.layers.RNN`; with
      attention="bahdanau" Bahdanau's order (the context of s_{t-1} is fed
      to the cell), with the Luong scores Luong's input feeding (h~_{t-1} is
      fed to the cell).
    - "fast": a `FastAttentionDecoder` (Luong without input feeding): the
      recurrence as fused whole-sequence layers, then the attention of all
      steps at once, with any of the scores (attention="bahdanau" is then
      the additive score in Luong's order).

    Training is teacher forcing: `call((source_ids, target_in_ids))` gives
    the logits of every next token; compile with `MaskedCrossEntropy`
    (padding out of the loss, optional label smoothing). Generation:
    `encode`, `decode_step` (one token, carried state) and `generate`
    (greedy, sampling, beam search of `keras_deeprnn.seq2seq.search`).

    Args:
        source_vocab_size, target_vocab_size: Vocabulary sizes (ids
            0..size-1, `pad_id` included).
        embedding_dim: Width of both embeddings.
        units: Units of the decoder's cells (and width of h~).
        encoder_units: Units of each encoder direction (default units // 2
            when bidirectional, so the memory is `units` wide, else units).
        attention_units: Hidden width of the additive scores (default
            units).
        cell: A cell name of `keras_deeprnn.cells.CELL_NAMES`.
        arch: "stack" (`depth` layers, each its own fused RNN), "srnn"
            (`depth` layers as one `StackedCells`), "dt" / "dts" (a deep
            transition of `depth` layers, without / with shortcuts).
        depth: Layers (see `arch`), the same in encoder and decoder.
        bidirectional: Bidirectional encoder.
        attention: "bahdanau", "luong-dot", "luong-general" or
            "luong-concat".
        decoder: "cell" or "fast".
        bridge: "dense" or "zeros".
        dropout: Dropout rate on both embeddings, between stacked layers
            and on h~ before the output layer.
        pad_id, bos_id, eos_id: Padding, start and end ids (targets: the
            decoder reads `bos_id y_1 .. y_T` and predicts `y_1 .. y_T
            eos_id`).
        max_length: Default longest output of `generate`.
        cell_kwargs: More arguments of every cell (e.g. `{"variant":
            "cifg"}`, `{"recurrent_dropout": 0.1}`).

    Call arguments:
        inputs: `(source_ids (batch, S), target_in_ids (batch, T))`, int.
        training: Whether dropout is active.

    Returns:
        Logits `(batch, T, target_vocab_size)`.

    Example:

    >>> from keras_deeprnn.seq2seq import MaskedCrossEntropy
    >>> model = Seq2Seq(20, 20, embedding_dim=8, units=8, attention="luong-general",
    ...                 decoder="fast")
    >>> source = np.array([[5, 6, 7, 0], [8, 9, 0, 0]])
    >>> target_in = np.array([[1, 10, 11], [1, 12, 0]])
    >>> tuple(model((source, target_in)).shape)
    (2, 3, 20)
    >>> model.compile("adam", loss=MaskedCrossEntropy(pad_id=0))
    >>> tokens, scores = model.generate(source, method="beam", beam_width=3,
    ...                                 max_length=5, n_best=2)
    >>> tokens.shape[:2], scores.shape
    ((2, 2), (2, 2))
    """

    def __init__(
        self,
        source_vocab_size,
        target_vocab_size,
        embedding_dim=256,
        units=512,
        encoder_units=None,
        attention_units=None,
        cell="lstm",
        arch="stack",
        depth=1,
        bidirectional=True,
        attention="bahdanau",
        decoder="cell",
        bridge="dense",
        dropout=0.2,
        pad_id=0,
        bos_id=1,
        eos_id=2,
        max_length=100,
        cell_kwargs=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.source_vocab_size = check_int("source_vocab_size", source_vocab_size, 2)
        self.target_vocab_size = check_int("target_vocab_size", target_vocab_size, 3)
        self.embedding_dim = check_units(embedding_dim)
        self.units = check_units(units)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        if encoder_units is None:
            if self.bidirectional and units % 2:
                raise ValueError(
                    f"Argument `units`={units} is odd: a bidirectional encoder "
                    "has units // 2 per direction by default; pass encoder_units."
                )
            encoder_units = units // 2 if self.bidirectional else units
        self.encoder_units = check_units(encoder_units)
        self.attention_units = check_units(attention_units or units)
        self.cell = check_choice("cell", cell, cell_registry.CELL_NAMES)
        self.arch = check_choice("arch", arch, ARCHS)
        self.depth = check_int("depth", depth, 1)
        if self.arch == "dts" and self.depth < 2:
            raise ValueError("Argument `depth` must be >= 2 for arch='dts' (the shortcut).")
        self.attention = check_choice("attention", attention, ATTENTIONS)
        self.decoder = check_choice("decoder", decoder, DECODERS)
        self.bridge = check_choice("bridge", bridge, BRIDGES)
        self.dropout = check_rate("dropout", dropout)
        self.pad_id = _check_id("pad_id", pad_id, self.target_vocab_size)
        self.bos_id = _check_id("bos_id", bos_id, self.target_vocab_size)
        self.eos_id = _check_id("eos_id", eos_id, self.target_vocab_size)
        if self.pad_id in (self.bos_id, self.eos_id):
            raise ValueError(
                f"pad_id={pad_id} must differ from bos_id={bos_id} and eos_id={eos_id}."
            )
        if pad_id >= self.source_vocab_size:
            raise ValueError(f"pad_id={pad_id} is not a source id (< {source_vocab_size}).")
        self.max_length = check_int("max_length", max_length, 1)
        if cell_kwargs is not None and not isinstance(cell_kwargs, dict):
            raise ValueError(f"Argument `cell_kwargs` must be a dict or None, got {cell_kwargs!r}.")
        self.cell_kwargs = dict(cell_kwargs or {})
        self.memory_size = self.encoder_units * (2 if self.bidirectional else 1)
        if self.attention == "luong-dot" and self.memory_size != self.units:
            raise ValueError(
                f"attention='luong-dot' scores the decoder state (units={units}) "
                f"against the memory ({self.memory_size} wide); they must be "
                "equally wide: set encoder_units, or use 'luong-general'."
            )

        self.source_embedding = keras.layers.Embedding(
            self.source_vocab_size, self.embedding_dim, name="source_embedding"
        )
        self.target_embedding = keras.layers.Embedding(
            self.target_vocab_size, self.embedding_dim, name="target_embedding"
        )
        self.embedding_dropout = keras.layers.Dropout(self.dropout, name="embedding_dropout")
        self.encoder_dropout = keras.layers.Dropout(self.dropout, name="encoder_dropout")
        self.output_dropout = keras.layers.Dropout(self.dropout, name="output_dropout")
        self.encoder_layers = []
        for k, encoder_cell in enumerate(self._cells(self.encoder_units)):
            layer = RNN(encoder_cell, return_sequences=True, return_state=True, name=f"encoder_{k}")
            if self.bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"bidirectional_encoder_{k}")
            self.encoder_layers.append(layer)
        self.attention_layer = self._attention()
        decoder_cells = self._cells(self.units)
        self.decoder_state_sizes = [s for c in decoder_cells for s in state_sizes(c)]
        self.bridge_layers = []
        if self.bridge == "dense":
            self.bridge_layers = [
                keras.layers.Dense(size, activation="tanh", name=f"bridge_{k}")
                for k, size in enumerate(self.decoder_state_sizes)
            ]
        if self.decoder == "cell":
            inner = decoder_cells[0] if len(decoder_cells) == 1 else StackedCells(decoder_cells)
            style = "bahdanau" if self.attention == "bahdanau" else "luong"
            self.decoder_cell = AttentionCell(
                inner, self.attention_layer, self.memory_size, style=style, name="attention_cell"
            )
            self.decoder_rnn = keras.layers.RNN(
                self.decoder_cell, return_sequences=True, name="decoder"
            )
            self.fast_decoder = None
        else:
            self.decoder_cell = self.decoder_rnn = None
            self.fast_decoder = FastAttentionDecoder(
                decoder_cells,
                self.attention_layer,
                self.memory_size,
                dropout=self.dropout,
                name="decoder",
            )
        self.output_layer = keras.layers.Dense(self.target_vocab_size, name="logits")
        self._step_function = None

    # -- construction ------------------------------------------------------
    def _cells(self, units):
        """New cells of `units`: one per layer ("stack"), else one."""
        kwargs = dict(self.cell_kwargs)
        if self.arch == "stack":
            return [cell_registry.get(self.cell, units, **kwargs) for _ in range(self.depth)]
        if self.arch == "srnn":
            return [
                StackedCells(
                    [cell_registry.get(self.cell, units, **kwargs) for _ in range(self.depth)]
                )
            ]
        return [
            resolve(
                self.arch, units=units, cell=self.cell, depth=self.depth, cell_kwargs=kwargs
            ).rnn_cell()
        ]

    def _attention(self):
        if self.attention == "bahdanau":
            return BahdanauAttention(self.attention_units, name="attention")
        score = self.attention.split("-", 1)[1]
        units = self.attention_units if score == "concat" else None
        return LuongAttention(score, units=units, name="attention")

    def build(self, input_shape=None):
        # Runs the model once on a tiny batch: every layer builds its
        # weights in the call that uses them (also when a saved model loads).
        source = ops.full((1, 2), (self.pad_id + 1) % self.source_vocab_size, "int32")
        target = ops.full((1, 2), self.bos_id, "int32")
        self.call((source, target), training=False)
        self.built = True

    # -- the network ----------------------------------------------------------
    def _check_ids(self, ids, name):
        ids = as_tensor(ids)
        if len(ids.shape) != 2:
            raise ValueError(
                f"Seq2Seq '{self.name}': {name} must be token ids of shape (batch, "
                f"length), got shape {tuple(ids.shape)}."
            )
        if "int" not in str(ids.dtype):
            raise ValueError(f"Seq2Seq '{self.name}': {name} must be integer ids, got {ids.dtype}.")
        return ops.cast(ids, "int32")

    def encode(self, source_ids, training=False):
        """The encoder's memory and the decoder's initial state.

        Args:
            source_ids: `(batch, S)` ids, `pad_id` at padding.
            training: Whether dropout is active.

        Returns:
            A `Seq2SeqState(memory, keys, mask, states)`.
        """
        source_ids = self._check_ids(source_ids, "source_ids")
        mask = ops.not_equal(source_ids, self.pad_id)
        x = self.embedding_dropout(self.source_embedding(source_ids), training=training)
        finals = []
        for k, layer in enumerate(self.encoder_layers):
            if k:
                x = self.encoder_dropout(x, training=training)
            outputs = layer(x, mask=mask, training=training)
            x, states = outputs[0], list(outputs[1:])
            if self.bidirectional:
                half = len(states) // 2
                states = [ops.concatenate(pair, -1) for pair in zip(states[:half], states[half:])]
            finals.extend(states)
        memory = x
        if not self.attention_layer.built:
            self.attention_layer.build((None, self.units), (None, None, self.memory_size))
        keys = self.attention_layer.keys(memory)
        if self.bridge == "dense":
            states = [dense(s) for dense, s in zip(self.bridge_layers, finals)]
        else:
            states = [zeros(memory, s) for s in self.decoder_state_sizes]
        mask = ops.cast(mask, memory.dtype)
        if self.decoder == "cell":
            states = self.decoder_cell.initial_states(memory, mask, states, keys=keys)[:-3]
        return Seq2SeqState(memory, keys, mask, list(states))

    def call(self, inputs, training=None):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"Seq2Seq '{self.name}' takes (source_ids, target_in_ids), got {inputs!r}."
            )
        state = self.encode(inputs[0], training=training)
        target = self._check_ids(inputs[1], "target_in_ids")
        x = self.embedding_dropout(self.target_embedding(target), training=training)
        if self.decoder == "cell":
            h = self.decoder_rnn(
                x,
                initial_state=[*state.states, state.memory, state.keys, state.mask],
                training=training,
            )
        else:
            h = self.fast_decoder(
                x, state.states, state.memory, state.keys, state.mask, training=training
            )
        return self.output_layer(self.output_dropout(h, training=training))

    def decode_step(self, token_ids, state, training=False):
        """One decoder step from the carried state (no prefix re-run).

        Args:
            token_ids: `(batch,)` the previous tokens (`bos_id` first).
            state: A `Seq2SeqState` (from `encode` or the last step).
            training: Whether dropout is active.

        Returns:
            `(logits (batch, V), new Seq2SeqState, attention (batch, S))`.
        """
        if not self.built:
            self.build()
        token_ids = ops.cast(as_tensor(token_ids), "int32")
        if len(token_ids.shape) != 1:
            raise ValueError(
                f"Seq2Seq '{self.name}': decode_step takes one token per "
                f"sentence, shape (batch,), got {tuple(token_ids.shape)}."
            )
        x = self.target_embedding(token_ids)
        decoder = self.decoder_cell if self.decoder == "cell" else self.fast_decoder
        h, states, weights = decoder.step(
            x, state.states, state.memory, state.keys, state.mask, training=training
        )
        logits = self.output_layer(h)
        return logits, state._replace(states=list(states)), weights

    # -- generation ---------------------------------------------------------
    def _step(self, tokens, states, memory, keys, mask):
        state = Seq2SeqState(memory, keys, mask, list(states))
        logits, state, weights = self.decode_step(tokens, state)
        return logits, state.states, weights

    def _compiled_step(self):
        if self._step_function is None:
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                self._step_function = tf.function(self._step, reduce_retracing=True)
            else:
                self._step_function = self._step
        return self._step_function

    def generate(
        self,
        source_ids,
        method="greedy",
        beam_width=5,
        length_penalty=0.6,
        temperature=1.0,
        max_length=None,
        n_best=1,
        return_attention=False,
        seed=None,
    ):
        """Translations of `source_ids`, decoded step by step.

        Args:
            source_ids: `(batch, S)` ids, `pad_id` at padding.
            method: "greedy", "sample" (from softmax(logits / temperature))
                or "beam".
            beam_width: K of beam search.
            length_penalty: alpha of Wu et al.'s length penalty (beam).
            temperature: Of sampling.
            max_length: Most tokens per output (default `self.max_length`).
            n_best: Hypotheses per sentence: the n best of the beam, or
                n samples; 1 for greedy.
            return_attention: Also return the attention weights.
            seed: Seed of sampling.

        Returns:
            `(tokens, scores)`: int32 `(batch, n_best, L)` ending with
            `eos_id` then `pad_id` (or cut at max_length), and their scores
            `(batch, n_best)` (beam: log P / lp; greedy, sample: log P);
            with `return_attention` also `(batch, n_best, L, S)`.
        """
        method = check_choice("method", method, METHODS)
        if method == "greedy" and n_best != 1:
            raise ValueError(f"method='greedy' gives one output per sentence, got n_best={n_best}.")
        source_ids = np.asarray(self._check_ids(source_ids, "source_ids"))
        if not self.built:
            self.build()
        max_length = self.max_length if max_length is None else max_length
        state = self.encode(source_ids)
        step = self._compiled_step()

        # The searches pass the same (repeated) context arrays at every
        # step: convert them to tensors once, not once per step.
        tensors = {}

        def constant(array):
            if id(array) not in tensors:
                tensors[id(array)] = (array, ops.convert_to_tensor(array))
            return tensors[id(array)][1]

        def step_fn(tokens, states, memory, keys, mask):
            context = [constant(a) for a in (memory, keys, mask)]
            logits, states, weights = step(tokens, states, *context)
            return np.asarray(logits), [np.asarray(s) for s in states], np.asarray(weights)

        context = [np.asarray(state.memory), np.asarray(state.keys), np.asarray(state.mask)]
        states = [np.asarray(s) for s in state.states]
        common = dict(
            step_fn=step_fn,
            initial_state=states,
            batch_size=len(source_ids),
            bos_id=self.bos_id,
            eos_id=self.eos_id,
            max_length=max_length,
            context=context,
            pad_id=self.pad_id,
            return_attention=return_attention,
        )
        if method == "greedy":
            return search.greedy_search(**common)
        if method == "sample":
            return search.sample_search(
                **common, temperature=temperature, num_samples=n_best, seed=seed
            )
        return search.beam_search(
            **common, beam_width=beam_width, length_penalty=length_penalty, n_best=n_best
        )

    def get_config(self):
        return {
            **super().get_config(),
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "encoder_units": self.encoder_units,
            "attention_units": self.attention_units,
            "cell": self.cell,
            "arch": self.arch,
            "depth": self.depth,
            "bidirectional": self.bidirectional,
            "attention": self.attention,
            "decoder": self.decoder,
            "bridge": self.bridge,
            "dropout": self.dropout,
            "pad_id": self.pad_id,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "max_length": self.max_length,
            "cell_kwargs": self.cell_kwargs,
        }
