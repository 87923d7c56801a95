import torch
from PIL import Image

from twinrun.trainers.images import save_confusion_matrix, save_digit_grid, save_labelled_grid


def test_pictures_are_pngs_of_sensible_size(tmp_path) -> None:
    save_digit_grid(torch.rand(16, 1, 28, 28), tmp_path / "grid.png")
    save_labelled_grid(torch.rand(3, 1, 28, 28), ["1 -> 7", "4 -> 9", "3 -> 5"], tmp_path / "wrong.png")
    save_confusion_matrix(torch.eye(10, dtype=torch.int64) * 5, tmp_path / "cm.png")
    for name in ("grid.png", "wrong.png", "cm.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width > 100 and image.height > 50


def test_grid_is_deterministic(tmp_path) -> None:
    images = torch.rand(8, 1, 28, 28)
    save_digit_grid(images, tmp_path / "a.png")
    save_digit_grid(images, tmp_path / "b.png")
    save_digit_grid(images.flip(0), tmp_path / "c.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()
