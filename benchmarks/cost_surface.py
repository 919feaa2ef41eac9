"""The cliff of a one-unit linear RNN, with and without gradient norm clipping.

The classic example of exploding gradients (Pascanu et al. 2013, "On the
difficulty of training recurrent neural networks", section 3 and figure 6,
here with a linear unit): one hidden unit, input 1 at every step,

    h_0 = 0,   h_t = w_r h_{t-1} + w_i x_t,   x_t = 1,   t = 1..50,
    C(w_r, w_i) = (h_50 - 0.7)^2,   h_50 = w_i (1 - w_r^50) / (1 - w_r).

Around w_r = 1 the cost rises by orders of magnitude within a tiny step (a
"wall"): a gradient-descent step that lands on the wall gets a huge gradient
and is thrown far away. Rescaling the gradient to norm `clip` whenever it is
larger (Pascanu et al.'s norm clipping; `clipnorm` of Keras optimizers)
keeps the step bounded, and descent follows the valley instead.

    python -m benchmarks.cost_surface                   # docs/images/cost_surface.png
    python -m benchmarks.cost_surface --lr 0.01 --clip 3.0 --start 0.95 0.005

The cost and gradient are exact (a NumPy loop over the 50 steps, backpropagated
by hand); nothing is trained with Keras.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

STEPS = 50
TARGET = 0.7
ESCAPE = 1e3  # |w| beyond which a path counts as thrown off


def last_state(w_r, w_i, steps=STEPS):
    """h_steps of the recurrence, elementwise over arrays of weights."""
    h = np.zeros(np.broadcast(w_r, w_i).shape)
    for _ in range(steps):
        h = w_r * h + w_i
    return h


def cost(w_r, w_i, steps=STEPS):
    return (last_state(w_r, w_i, steps) - TARGET) ** 2


def gradient(w_r, w_i, steps=STEPS):
    """(dC/dw_r, dC/dw_i) by backpropagation through the `steps` steps."""
    states = [0.0]
    for _ in range(steps):
        states.append(w_r * states[-1] + w_i)
    delta = 2.0 * (states[-1] - TARGET)  # dC/dh_T
    d_r = d_i = 0.0
    for t in range(steps, 0, -1):
        d_r += delta * states[t - 1]
        d_i += delta  # x_t = 1
        delta *= w_r  # dC/dh_{t-1} = dC/dh_t * w_r
    return np.array([d_r, d_i])


def descend(start, lr, iterations, clip=None):
    """Gradient-descent path from `start`; with `clip`, gradients of norm
    above `clip` are rescaled to norm `clip`. Stops early when the path is
    thrown beyond |w| = 1e3 or overflows."""
    w = np.asarray(start, dtype=float)
    path = [w]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(iterations):
            g = gradient(*w)
            norm = np.linalg.norm(g)
            if clip is not None and norm > clip:
                g = g * (clip / norm)
            w = w - lr * g
            path.append(w)
            if not np.all(np.isfinite(w)) or np.abs(w).max() > ESCAPE:
                break
    return np.array(path)


def plot(plain, clipped, out, lr, clip, box=(0.8, 1.06, -0.05, 0.3), resolution=300):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r0, r1, i0, i1 = box
    w_r, w_i = np.meshgrid(np.linspace(r0, r1, resolution), np.linspace(i0, i1, resolution))
    log_cost = np.log10(cost(w_r, w_i) + 1e-12)
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    filled = left.contourf(
        w_r, w_i, log_cost, levels=np.arange(-6, 9.5, 0.5), cmap="viridis", extend="both"
    )
    figure.colorbar(filled, ax=left, label="log10 cost")
    valley = np.linspace(r0, r1, 400)
    left.plot(valley, TARGET / last_state(valley, 1.0), "w:", lw=1, label="C = 0 (valley)")
    inside = (plain[:, 0] >= r0) & (plain[:, 0] <= r1) & (plain[:, 1] >= i0) & (plain[:, 1] <= i1)
    shown = plain[: int(np.argmin(inside)) if not inside.all() else len(plain)]
    left.plot(shown[:, 0], shown[:, 1], "o-", color="tab:red", label=f"plain GD, lr {lr}")
    if len(shown) < len(plain):
        first_out = plain[len(shown)]
        left.annotate(
            f"next step: ({first_out[0]:.3g}, {first_out[1]:.3g}),\nthen |w| > {ESCAPE:g}",
            xy=shown[-1],
            xytext=(r0 + 0.01, i0 + 0.03),
            color="tab:red",
            bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"),
            arrowprops=dict(arrowstyle="->", color="tab:red"),
        )
    left.plot(
        clipped[:, 0], clipped[:, 1], ".-", color="white", label=f"GD with norm clipping at {clip}"
    )
    left.plot(*plain[0], "k*", ms=12, label="start")
    left.set(
        xlim=(r0, r1),
        ylim=(i0, i1),
        xlabel="w_r (recurrent weight)",
        ylabel="w_i (input weight)",
        title=f"C = (h_{STEPS} - {TARGET})^2, h_t = w_r h_(t-1) + w_i",
    )
    left.legend(loc="upper right", fontsize=8)

    with np.errstate(over="ignore", invalid="ignore"):
        plain_cost = cost(plain[:, 0], plain[:, 1])
    right.semilogy(
        np.where(np.isfinite(plain_cost), plain_cost, np.nan),
        "o-",
        color="tab:red",
        label="plain GD",
    )
    right.semilogy(
        cost(clipped[:, 0], clipped[:, 1]) + 1e-30,
        ".-",
        color="black",
        label=f"norm clipping at {clip}",
    )
    right.set(
        xlabel="gradient-descent step",
        ylabel="cost (values above 1e12 off the scale)",
        title="cost along the paths",
        ylim=(1e-12, 1e12),
    )
    right.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cost_surface", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("docs/images/cost_surface.png"))
    parser.add_argument(
        "--start", type=float, nargs=2, default=(0.95, 0.005), metavar=("W_R", "W_I")
    )
    parser.add_argument("--lr", type=float, default=0.01, help="gradient-descent step size")
    parser.add_argument("--clip", type=float, default=3.0, help="gradient norm threshold")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--resolution", type=int, default=300, help="grid points per axis")
    args = parser.parse_args(argv)
    if args.lr <= 0 or args.clip <= 0 or args.iterations < 1 or args.resolution < 2:
        parser.error("--lr and --clip must be positive, --iterations >= 1, --resolution >= 2")
    plain = descend(args.start, args.lr, args.iterations)
    clipped = descend(args.start, args.lr, args.iterations, clip=args.clip)
    for name, path in (("plain", plain), (f"clipped at {args.clip}", clipped)):
        with np.errstate(over="ignore", invalid="ignore"):
            final = cost(*path[-1])
        print(
            f"{name:>16}: {len(path) - 1} steps, cost {cost(*path[0]):.3g} -> {final:.3g}, "
            f"final w = ({path[-1][0]:.4g}, {path[-1][1]:.4g})"
        )
    plot(plain, clipped, args.out, args.lr, args.clip, resolution=args.resolution)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
