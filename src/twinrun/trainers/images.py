"""Pictures a person would rather look at than numbers: digit grids, reconstructions beside their
originals, the misclassified digits and a confusion matrix.

Plain digit grids are pixels (PIL, exact); pictures with text are drawn by matplotlib (Agg backend,
imported only here), so labels keep their spaces and the confusion matrix has a colour bar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from twinrun.record.runs import atomic_path


def _save_png(image: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def _to_pil(grid: torch.Tensor) -> Image.Image:
    """[C, H, W] float in [0, 1] -> PIL image (rounded exactly like torchvision's save_image)."""
    array = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    return Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array)


def save_digit_grid(images: torch.Tensor, path: Path, nrow: int = 8, scale: int = 2) -> None:
    """Save [N, 1, 28, 28] images in [0, 1] as one PNG grid, upscaled for viewing."""
    # imported here: torchvision pulls in its models, ops and torch._dynamo (seconds), only pictures need it
    make_grid = _make_grid()

    grid = make_grid(images.detach().cpu().view(-1, 1, 28, 28), nrow=nrow, padding=2, pad_value=0.5)
    picture = _to_pil(grid)
    _save_png(picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST), path)


def _make_grid() -> Any:
    """torchvision's ``make_grid``; a torch/torchvision mismatch is one line, not a traceback."""
    from twinrun.record.versions import import_torchvision

    return import_torchvision("torchvision.utils").make_grid


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display; the same pixels on every machine with these fonts
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig: Any, path: Path) -> None:
    plt = _pyplot()
    try:
        with atomic_path(path) as tmp:
            # No timestamp or software metadata: twins write the same bytes.
            fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    finally:
        plt.close(fig)


def _digits(images: torch.Tensor) -> Any:
    """[N, 1, 28, 28] in [0, 1] -> one [H, W] array of digits side by side (for imshow)."""
    make_grid = _make_grid()
    grid = make_grid(images.detach().cpu().view(-1, 1, 28, 28), nrow=8, padding=2, pad_value=0.5)
    return grid[0].numpy()


def reconstructions_figure(originals: torch.Tensor, reconstructions: torch.Tensor) -> Any:
    """Originals (left) beside their reconstructions (right), titled."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.6))
    for axis, images, title in (
        (axes[0], originals, "test digits"),
        (axes[1], reconstructions, "reconstructions"),
    ):
        axis.imshow(_digits(images), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axis.set_title(title)
        axis.set_axis_off()
    fig.suptitle("VAE: test digits and their reconstructions (same order)")
    fig.tight_layout()
    return fig


def save_reconstructions(originals: torch.Tensor, reconstructions: torch.Tensor, path: Path) -> None:
    _save_figure(reconstructions_figure(originals, reconstructions), path)


def labelled_figure(images: torch.Tensor, captions: list[str], ncol: int = 8) -> Any:
    """Digits with a caption over each (e.g. ``true 7, predicted 1``).

    One axes for the whole grid, captions as text in the gaps between rows: a subplot per digit with a
    tight layout took seconds per picture (most of a small classifier run).
    """
    plt = _pyplot()
    rows = max(1, (len(captions) + ncol - 1) // ncol)
    cell, top_gap, side_gap = 28, 14, 8  # digit pixels; a caption band over each row; space between digits
    width, height = cell + side_gap, cell + top_gap  # canvas pixels per digit
    canvas = torch.ones(rows * height, ncol * width)  # [H, W], white
    for i in range(min(len(captions), len(images))):
        row, col = divmod(i, ncol)
        top, left = row * height + top_gap, col * width + side_gap // 2
        canvas[top : top + cell, left : left + cell] = 1 - images[i].detach().cpu().view(28, 28)
    inches_per_pixel = 1.35 / width
    fig = plt.figure(figsize=(1.35 * ncol, inches_per_pixel * rows * height + 0.5))
    axis = fig.add_axes((0.0, 0.0, 1.0, 1.0 - 0.5 / fig.get_figheight()))
    axis.imshow(canvas.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axis.set_axis_off()
    for i, caption in enumerate(captions[: len(images)]):
        row, col = divmod(i, ncol)
        axis.text((col + 0.5) * width, row * height + top_gap - 2, caption, ha="center", fontsize=8)
    fig.suptitle("misclassified test digits" if captions else "no misclassified test digits")
    return fig


def save_labelled_grid(images: torch.Tensor, captions: list[str], path: Path, ncol: int = 8) -> None:
    _save_figure(labelled_figure(images, captions, ncol), path)


def confusion_figure(matrix: torch.Tensor, title: str = "") -> Any:
    """A [K, K] confusion matrix (rows: true class, columns: predicted) as a heat map with counts."""
    plt = _pyplot()
    k = matrix.shape[0]
    counts = matrix.cpu().numpy()
    share = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    fig, axis = plt.subplots(figsize=(6.4, 5.6))
    image = axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for t in range(k):
        for p in range(k):
            color = "white" if share[t, p] > 0.6 else "black"
            axis.text(p, t, str(int(counts[t, p])), ha="center", va="center", fontsize=8, color=color)
    axis.set_xticks(range(k))
    axis.set_yticks(range(k))
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    axis.set_title(title or "confusion matrix")
    # Fixed margins: tight_layout measured every tick label and took most of the picture's time.
    fig.subplots_adjust(left=0.1, right=0.86, bottom=0.1, top=0.93)
    bar = fig.colorbar(image, ax=axis, fraction=0.046)
    bar.set_label("share of the true class")
    return fig


def save_confusion_matrix(matrix: torch.Tensor, path: Path, title: str = "") -> None:
    _save_figure(confusion_figure(matrix, title), path)
