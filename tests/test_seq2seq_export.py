"""A Seq2Seq as TFLite step models: builtin ops only, and the same beam
search in LiteRT as in Keras."""

import numpy as np
import pytest

from keras_deeprnn.export import ExportError
from keras_deeprnn.seq2seq import Seq2Seq
from keras_deeprnn.seq2seq import export_step_models
from keras_deeprnn.seq2seq import step_models
from keras_deeprnn.seq2seq import tflite_generate


def test_step_models_compute_encode_and_decode_step():
    model = Seq2Seq(11, 12, embedding_dim=4, units=6, attention="luong-general", depth=2)
    encoder, decoder = step_models(model)
    src = np.array([[4, 5, 6, 0], [7, 8, 0, 0]], "int32")
    outputs = [np.asarray(y) for y in encoder(src)]
    state = model.encode(src)
    want = [state.memory, state.keys, state.mask, *state.states]
    for got, expected in zip(outputs, want):
        np.testing.assert_allclose(got, np.asarray(expected), atol=1e-6)
    tokens = np.array([1, 1], "int32")
    logits, state, weights = model.decode_step(tokens, state)
    got = decoder([tokens, *outputs[3:], *outputs[:3]])
    np.testing.assert_allclose(np.asarray(got[0]), np.asarray(logits), atol=1e-5)
    np.testing.assert_allclose(np.asarray(got[-1]), np.asarray(weights), atol=1e-6)
    for a, b in zip(got[1:-1], state.states):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


@pytest.mark.parametrize("decoder", ["cell", "fast"])
def test_litert_beam_search_equals_keras(tmp_path, decoder):
    model = Seq2Seq(11, 12, embedding_dim=4, units=6, attention="bahdanau", decoder=decoder,
                    max_length=6)  # fmt: skip
    report = export_step_models(model, tmp_path, max_source_length=7, batch_size=2)
    assert report["encoder_max_abs_diff"] < 1e-4 and report["decoder_max_abs_diff"] < 1e-4
    src = np.array([[4, 5, 6, 0, 0], [7, 8, 9, 10, 3], [3, 3, 0, 0, 0]], "int32")
    keras_result = model.generate(src, method="beam", beam_width=3, n_best=2, return_attention=True)
    lite_result = tflite_generate(tmp_path, src, method="beam", beam_width=3, n_best=2,
                                  return_attention=True)  # fmt: skip
    np.testing.assert_array_equal(lite_result[0], keras_result[0])
    np.testing.assert_allclose(lite_result[1], keras_result[1], atol=1e-4)
    # The files' source is padded to 7 steps, whose weights are zero.
    np.testing.assert_allclose(lite_result[2][..., :5], keras_result[2], atol=1e-4)
    np.testing.assert_array_equal(lite_result[2][..., 5:], 0.0)
    with pytest.raises(ValueError, match="max_source_length"):
        tflite_generate(tmp_path, np.ones((1, 9), "int32"))
    (tmp_path / "seq2seq.json").write_text("{broken")
    with pytest.raises(ExportError, match="seq2seq.json"):
        tflite_generate(tmp_path, src)
