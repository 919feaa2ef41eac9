"""benchmarks/cost_surface.py: the one-unit RNN's cost, gradient and paths."""

import numpy as np
import pytest

from benchmarks import cost_surface as cs


@pytest.mark.parametrize("w_r", [-0.7, 0.5, 0.95, 1.0, 1.02])
def test_last_state_matches_the_closed_form(w_r):
    w_i = 0.3
    closed = w_i * cs.STEPS if w_r == 1.0 else w_i * (1 - w_r**cs.STEPS) / (1 - w_r)
    assert cs.last_state(w_r, w_i) == pytest.approx(closed, rel=1e-10)


@pytest.mark.parametrize("point", [(0.5, 0.1), (0.95, 0.005), (0.99, -0.2), (1.02, 0.01)])
def test_gradient_matches_central_finite_differences(point):
    eps = 1e-6
    numeric = [
        (cs.cost(*(np.array(point) + e)) - cs.cost(*(np.array(point) - e))) / (2 * eps)
        for e in (np.array([eps, 0.0]), np.array([0.0, eps]))
    ]
    np.testing.assert_allclose(cs.gradient(*point), numeric, rtol=1e-5)


def test_plain_descent_is_thrown_off_and_clipped_descent_converges():
    plain = cs.descend((0.95, 0.005), lr=0.01, iterations=60)
    clipped = cs.descend((0.95, 0.005), lr=0.01, iterations=60, clip=3.0)
    assert len(plain) < 10 and np.abs(plain[-1]).max() > cs.ESCAPE
    assert len(clipped) == 61 and cs.cost(*clipped[-1]) < 1e-6
    # Clipped steps are at most lr * clip long.
    assert np.linalg.norm(np.diff(clipped, axis=0), axis=1).max() <= 0.03 + 1e-12


def test_script_writes_the_png(tmp_path, capsys):
    out = tmp_path / "surface.png"
    assert cs.main(["--out", str(out), "--resolution", "40", "--iterations", "20"]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    printed = capsys.readouterr().out
    assert "plain: 3 steps" in printed and f"wrote {out}" in printed
