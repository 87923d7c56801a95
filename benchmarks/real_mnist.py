"""Figure 6 (optional): the classifier on real MNIST digits, where ``../shared/data/mnist-t10k`` exists.

``benchmarks.mnist_t10k`` splits the 10,000 real test digits into 8,000 train / 2,000 test IDX files;
the classifier trains on them with its default config (``data=mnist data.root=ROOT``).
"""

from __future__ import annotations

from benchmarks.common import Context, cli_equivalent, compose, median, timed_train
from benchmarks.table import Row


def run(ctx: Context) -> list[Row]:
    from benchmarks import mnist_t10k

    cmd = ctx.command("mnist")
    if not mnist_t10k.available():
        ctx.notes.append(f"mnist: skipped, {mnist_t10k.SHARED} is absent (developers' machines only).")
        return [Row("real MNIST classifier", f"skipped: {mnist_t10k.SHARED} absent", command=cmd)]
    root = mnist_t10k.build_root(ctx.data_root / "mnist-t10k")
    overrides = ["data=mnist", f"data.root={root}", "device=cpu", *ctx.sizes.mnist_overrides]
    cfg = compose("mnist_classifier", overrides)
    timing = timed_train("mnist_classifier", cfg, ctx.scratch)
    last = timing.metrics[-1]["approx"]
    epochs = len(timing.epochs)
    full_cmd = f"{cmd}: `{cli_equivalent('mnist_classifier', overrides)}`"
    return [
        Row(
            f"real MNIST classifier test accuracy (t10k split 8,000/2,000, {epochs} epochs)",
            f"{100 * last['test_accuracy']:.2f}% (test loss {last['test_loss']:.4f})",
            command=full_cmd,
        ),
        Row(
            "real MNIST classifier epoch time",
            f"{median(timing.epochs):.2f} s per epoch (median of {epochs}); train() wall {timing.wall:.1f} s",
            command=full_cmd,
        ),
    ]
