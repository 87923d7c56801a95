"""Pictures a person would rather look at than numbers: digit grids and a confusion matrix."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

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
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().cpu().view(-1, 1, 28, 28), nrow=nrow, padding=2, pad_value=0.5)
    picture = _to_pil(grid)
    _save_png(picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST), path)


def save_labelled_grid(images: torch.Tensor, captions: list[str], path: Path, ncol: int = 8) -> None:
    """Digits with a caption under each (e.g. ``true 7 -> 1``), for misclassified samples."""
    cell_w, cell_h, scale = 84, 100, 3
    rows = max(1, (len(captions) + ncol - 1) // ncol)
    canvas = Image.new("L", (ncol * cell_w, rows * cell_h), color=255)
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    for i, (image, caption) in enumerate(zip(images.detach().cpu(), captions, strict=True)):
        x, y = (i % ncol) * cell_w, (i // ncol) * cell_h
        digit = _to_pil(1.0 - image.view(1, 28, 28)).resize((28 * scale, 28 * scale), Image.NEAREST)
        canvas.paste(digit, (x + (cell_w - digit.width) // 2, y + 2))
        draw.text((x + 6, y + 28 * scale + 4), caption, fill=0, font=font)
    _save_png(canvas, path)


def save_confusion_matrix(matrix: torch.Tensor, path: Path, title: str = "") -> None:
    """A heat map of a [K, K] confusion matrix (rows: true class, columns: predicted) with counts."""
    k, cell, margin = matrix.shape[0], 40, 60
    canvas = Image.new("RGB", (margin + k * cell + 10, margin + k * cell + 30), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    row_totals = matrix.sum(dim=1, keepdim=True).clamp_min(1)
    share = (matrix.float() / row_totals).tolist()
    for t in range(k):
        draw.text((margin - 18, margin + t * cell + 14), str(t), fill="black", font=font)
        draw.text((margin + t * cell + 16, margin - 18), str(t), fill="black", font=font)
        for p in range(k):
            shade = int(255 * (1 - share[t][p]))
            colour = (shade, shade, 255) if t == p else (255, shade, shade)
            box = (
                margin + p * cell,
                margin + t * cell,
                margin + (p + 1) * cell - 1,
                margin + (t + 1) * cell - 1,
            )
            draw.rectangle(box, fill=colour, outline="lightgray")
            draw.text((box[0] + 6, box[1] + 14), str(int(matrix[t, p])), fill="black", font=font)
    draw.text((4, 4), title or "confusion matrix (rows: true, columns: predicted)", fill="black", font=font)
    draw.text((4, margin + k * cell + 10), "true class down, predicted class across", fill="gray", font=font)
    _save_png(canvas, path)
