"""The private APIs of Keras, TensorFlow and KerasTuner this project uses.

Everything else goes through public APIs; these have no public equivalent.
tests/test_compat.py pins the behaviour relied on, so that a release that
changes one of them fails there, by name.

Keras (`keras.src`):

- `DropoutRNNCell` (`keras.src.layers.rnn.dropout_rnn_cell`): our cells and
  `StackedCells` mix it in because `keras.layers.RNN` creates the dropout
  masks before its loop and resets them after the call only for instances
  of it. Relied on: `get_dropout_mask` / `get_recurrent_dropout_mask` return
  one mask, created on the first call and reused until
  `reset_dropout_mask` / `reset_recurrent_dropout_mask`.
- `backend_rnn` (`keras.src.backend.rnn`): the backend's time loop behind
  `keras.layers.RNN`; `keras_deeprnn.layers.RNN` runs it over inputs
  projected before the loop. Relied on: the keywords `go_backwards`, `mask`,
  `input_length`, `zero_output_for_mask`, `return_all_outputs` and the
  result `(last_output, outputs, states)`.
- `backend_lstm`, `backend_gru` (`keras.src.backend.lstm` / `gru`): the
  cuDNN loops of `keras.layers.LSTM` / `GRU`; `keras_deeprnn.layers.RNN`
  runs them on a GPU for the cells whose `FusedSpec.cudnn` names one.
  Relied on: the positional arguments `inputs, initial_state_h,
  initial_state_c, mask` (LSTM) and `inputs, initial_state, mask` (GRU),
  the keywords `kernel`, `recurrent_kernel`, `bias` (Keras's layout),
  `activation`, `recurrent_activation`, `return_sequences`, `go_backwards`
  and the GRU's `reset_after`; the result `(last_output, outputs, states)`
  with zero outputs at the masked steps of right-padded sequences and
  `last_output` the final state h; and NotImplementedError wherever cuDNN
  cannot run (no GPU, no bias, other activations).
- `multi_worker_fit` works around `fit` under MultiWorkerMirroredStrategy
  with `keras.src.backend.tensorflow.trainer._collective_all_reduce_multi_worker`
  and `Model._symbolic_build` / `Model._maybe_symbolic_build`; see there.
- `input_layer(tensor)`: `KerasTensor._keras_history.operation`, the
  `InputLayer` of a model input, whose name the exports give their inputs
  (the tensor's own name is a generated one in a `Sequential`).

TensorFlow (`tensorflow.python`):

- `record` (`tensorflow.python.eager.record`): `record.could_possibly_record()`
  is False when no gradient tape (nor forward accumulator) watches, so the
  fused loops keep no activations for a backward pass.
- `in_save_context()` (`tensorflow.python.saved_model.save_context`): True
  while `tf.saved_model.save` traces; the native kernels (custom ops that
  need this package's library) stay out of exported graphs.
- `in_xla_context()` (`tensorflow.python.ops.control_flow_util`): True
  inside an XLA-compiled function, where the custom ops have no kernel.

LiteRT:

- `tflite_ops(interpreter)`: `Interpreter._get_ops_details()`, one dict per
  node of the graph with its "op_name"; the exports check which ops a file
  holds (builtin ops only, fused LSTMs) with it.

KerasTuner (`keras_tuner.src`):

- `serve_oracle` runs KerasTuner's gRPC oracle service
  (`keras_tuner.src.distribute.oracle_chief.OracleServicer`,
  `keras_tuner.src.protos`): the stock chief serves it in a loop that never
  returns, so it cannot watch its workers. Relied on: `OracleServicer(oracle)`
  answers the workers' `OracleClient` and sets `stop_triggered` once the
  oracle has answered a request for a trial with STOPPED.
- `requeue_trial` uses `Oracle._retry_queue` (trial ids that `create_trial`
  hands out before new ones) and `Oracle._save_trial`: a trial whose worker
  died runs again without using up one of `max_retries_per_trial`.
"""

import contextlib
from concurrent import futures

import tensorflow as tf
from keras.src.backend import gru as backend_gru
from keras.src.backend import lstm as backend_lstm
from keras.src.backend import rnn as backend_rnn
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell
from tensorflow.python.eager import record
from tensorflow.python.ops import control_flow_util
from tensorflow.python.saved_model import save_context

__all__ = [
    "DropoutRNNCell",
    "backend_gru",
    "backend_lstm",
    "backend_rnn",
    "in_save_context",
    "in_xla_context",
    "input_layer",
    "multi_worker_fit",
    "queued_trials",
    "record",
    "requeue_trial",
    "serve_oracle",
    "tflite_ops",
]


def in_save_context():
    """Whether `tf.saved_model.save` is tracing the current function."""
    return save_context.in_save_context()


def in_xla_context():
    """Whether the current graph (or one it is nested in) is XLA-compiled."""
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


@contextlib.contextmanager
def multi_worker_fit(model, data):
    """Works around two failures of Keras 3.15's `fit` under
    MultiWorkerMirroredStrategy (one replica per worker process), for the
    `fit` calls inside the block only:

    - `fit` builds the metrics from a first batch that it all-reduces
      eagerly, which raises "Attempt to convert a value (PerReplica...)": the
      model is built here from a local batch and `fit`'s build is skipped;
    - `fit` all-reduces each step's scalar logs with `axis=0`, which fails on
      scalars: it reads the local replica's logs instead.

    Gradients are still all-reduced by the optimizer, so the workers'
    weights stay identical; only the logged loss and metrics are those of
    the worker's own shard. Everything patched is restored on exit.
    """
    from keras.src.backend.tensorflow import trainer

    original = trainer._collective_all_reduce_multi_worker
    trainer._collective_all_reduce_multi_worker = lambda strategy: False
    try:
        with model.distribute_strategy.scope():
            model._symbolic_build(data_batch=next(iter(data)))
        model._maybe_symbolic_build = lambda *args, **kwargs: None
        yield
    finally:
        trainer._collective_all_reduce_multi_worker = original
        vars(model).pop("_maybe_symbolic_build", None)


def input_layer(tensor):
    """The `InputLayer` that made the model input `tensor`."""
    return tensor._keras_history.operation


def tflite_ops(interpreter):
    """The op names of every node of a LiteRT interpreter's graph, in order."""
    return [op["op_name"] for op in interpreter._get_ops_details()]


def serve_oracle(oracle, host, port):
    """Serves `oracle` to KerasTuner workers on `host:port` (port 0: a free
    one); returns `(server, servicer, port)`. `servicer.stop_triggered`
    turns True once a worker was told that the search is over."""
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # grpcio >= 1.60 raises where older ones return 0
        bound = 0
    if not bound:
        raise ValueError(f"cannot listen on {address}.")
    server.start()
    return server, servicer, bound


def requeue_trial(oracle, trial):
    """Puts `trial` (marked INVALID) first in line for the next worker,
    without counting a retry. The caller holds the oracle's lock."""
    oracle._retry_queue.append(trial.trial_id)
    oracle._save_trial(trial)


def queued_trials(oracle):
    """Ids of the trials waiting to be run again."""
    return list(oracle._retry_queue)
