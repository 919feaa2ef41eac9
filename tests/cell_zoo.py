"""Every cell configuration the tests sweep over, with readable ids."""

from keras_deeprnn import cells

CONFIGS = {
    "rnn": lambda u, **kw: cells.SimpleRNNCell(u, **kw),
    "rnn-leak": lambda u, **kw: cells.SimpleRNNCell(u, leak=0.3, **kw),
    "rnn-trainable-leak": lambda u, **kw: cells.SimpleRNNCell(
        u, leak=0.3, trainable_leak=True, **kw
    ),
    **{
        f"lstm-{v}": (lambda v: lambda u, **kw: cells.LSTMCell(u, variant=v, **kw))(v)
        for v in cells.LSTM_VARIANTS
    },
    "peephole-lstm": lambda u, **kw: cells.PeepholeLSTMCell(u, **kw),
    "gru": lambda u, **kw: cells.GRUCell(u, **kw),
    "gru-reset-before": lambda u, **kw: cells.GRUCell(u, reset_after=False, **kw),
    "mut1": lambda u, **kw: cells.MUT1Cell(u, **kw),
    "mut2": lambda u, **kw: cells.MUT2Cell(u, **kw),
    "mut3": lambda u, **kw: cells.MUT3Cell(u, **kw),
}

IDS = sorted(CONFIGS)
