"""Generation one step per token, and the streaming TFLite export of a
language model against Keras, step by step."""

import numpy as np
import pytest

from keras_deeprnn.export import StreamingModel
from keras_deeprnn.models import beam_search_tokens
from keras_deeprnn.models import language_model
from keras_deeprnn.models import sample_tokens

V = 13


@pytest.fixture()
def model():
    m = language_model(V, units=12, kind="srnn", cell="lstm", embedding_dim=6, dropout=0.2)
    # Larger weights than the initial ones, so that the next-token
    # distributions are far from uniform and the argmax is clear.
    rng = np.random.default_rng(0)
    m.set_weights([w + rng.normal(0, 0.5, w.shape).astype("float32") for w in m.get_weights()])
    return m


def _log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _full_greedy(model, primer, length):
    """Greedy decoding the slow, independent way: re-run the whole model
    on the whole sequence for every new token."""
    seq = list(primer)
    for _ in range(length):
        logits = np.asarray(model(np.array([seq], "int32")))[0, -1]
        seq.append(int(np.argmax(logits)))
    return seq[len(primer) :]


def _log_prob(model, primer, continuation):
    seq = np.array([list(primer) + list(continuation)], "int32")
    lp = _log_softmax(model(seq[:, :-1]))[0]
    steps = np.arange(len(primer) - 1, seq.shape[1] - 1)
    return float(lp[steps, seq[0, steps + 1]].sum())


def test_streaming_model_equals_the_sequence_model(model):
    ids = np.random.default_rng(1).integers(0, V, (2, 9)).astype("int32")
    step = StreamingModel(model, batch_size=2)
    states = step.initial_states()
    assert sorted(states) == sorted(step.state_names) and len(states) == 4  # 2 LSTMs: h, c
    outputs = []
    for t in range(ids.shape[1]):
        (logits,), states = step(ids[:, t], states)
        outputs.append(logits)
    np.testing.assert_allclose(np.stack(outputs, 1), model(ids), rtol=1e-5, atol=1e-5)


def test_temperature_zero_is_greedy(model):
    primer = [3, 1, 4]
    greedy = sample_tokens(model, primer, 12, temperature=0)
    assert greedy.tolist() == _full_greedy(model, primer, 12)
    assert sample_tokens(model, primer, 12, top_k=1, seed=5).tolist() == greedy.tolist()


def test_sampling_is_seeded_and_top_k_keeps_to_the_k_best(model):
    a = sample_tokens(model, [2], 30, temperature=1.5, seed=7)
    assert a.tolist() == sample_tokens(model, [2], 30, temperature=1.5, seed=7).tolist()
    assert a.tolist() != sample_tokens(model, [2], 30, temperature=1.5, seed=8).tolist()
    drawn = sample_tokens(model, [2], 25, temperature=2.0, top_k=2, seed=3)
    seq = [2] + drawn.tolist()
    logits = np.asarray(model(np.array([seq[:-1]], "int32")))[0]
    for t, token in enumerate(drawn):
        assert token in np.argsort(-logits[t])[:2]


def test_beam_search(model):
    primer = [5, 0]
    assert beam_search_tokens(model, primer, 8, beam_width=1).tolist() == _full_greedy(
        model, primer, 8
    )
    greedy = _full_greedy(model, primer, 8)
    beam = beam_search_tokens(model, primer, 8, beam_width=4)
    assert _log_prob(model, primer, beam) >= _log_prob(model, primer, greedy) - 1e-6


def test_generation_refuses_bad_arguments(model):
    for call, match in [
        (lambda: sample_tokens(model, [], 3), "primer is empty"),
        (lambda: sample_tokens(model, [1], 0), "length"),
        (lambda: sample_tokens(model, [1], 3, temperature=-1), "temperature"),
        (lambda: sample_tokens(model, [1], 3, top_k=0), "top_k"),
        (lambda: beam_search_tokens(model, [1], 3, beam_width=0), "beam_width"),
        (lambda: sample_tokens(model, [0.5], 3), "integer token ids"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()


def test_litert_streaming_equals_keras_step_by_step(model, tmp_path):
    pytest.importorskip("ai_edge_litert")
    from apps.text.cli import litert_greedy
    from keras_deeprnn.export import export_tflite
    from keras_deeprnn.export import load_tflite

    ids = np.random.default_rng(4).integers(0, V, (4, 16)).astype("int32")
    report = export_tflite(model, tmp_path / "lm.tflite", mode="streaming", check_inputs=ids[:1])
    assert report["max_abs_diff"] <= 1e-4
    assert "WHILE" not in report["ops"] and all(op.isupper() for op in report["ops"])
    interpreter = load_tflite(tmp_path / "lm.tflite")
    run = interpreter.get_signature_runner()
    states = {n: np.zeros((1, 12), np.float32) for n in run.get_input_details() if "_state_" in n}
    reference = np.asarray(model(ids[1:2]))[0]
    for t in range(ids.shape[1]):
        result = run(ids=ids[1:2, t], **states)
        states = {n: result[n] for n in states}
        np.testing.assert_allclose(result["output_0"][0], reference[t], rtol=1e-4, atol=1e-4)
    primer = [1, 2]
    assert litert_greedy(interpreter, primer, 20).tolist() == _full_greedy(model, primer, 20)
