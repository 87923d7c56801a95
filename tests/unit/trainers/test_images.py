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


def _texts(fig) -> set[str]:
    """Every piece of text a figure draws (titles, axis labels, tick labels, annotations, colour bar)."""
    import matplotlib.text

    found = {t.get_text() for t in fig.findobj(matplotlib.text.Text)}
    fig.clf()
    return found


def test_confusion_matrix_reads_with_its_spaces_and_a_colour_bar() -> None:
    from twinrun.trainers.images import confusion_figure

    fig = confusion_figure(torch.eye(10, dtype=torch.int64) * 7, "test accuracy 95.12%")
    assert len(fig.axes) == 2  # the matrix and its colour bar
    texts = _texts(fig)
    assert {"test accuracy 95.12%", "true class", "predicted class", "share of the true class"} <= texts
    assert "7" in texts and "0" in texts  # the counts are written in the cells


def test_misclassified_captions_and_reconstruction_titles_read_correctly() -> None:
    from twinrun.trainers.images import labelled_figure, reconstructions_figure

    texts = _texts(labelled_figure(torch.rand(2, 1, 28, 28), ["true 7, predicted 1", "true 4, predicted 9"]))
    assert {"true 7, predicted 1", "true 4, predicted 9", "misclassified test digits"} <= texts
    texts = _texts(reconstructions_figure(torch.rand(8, 1, 28, 28), torch.rand(8, 1, 28, 28)))
    assert {"test digits", "reconstructions"} <= texts


def test_figures_with_text_are_deterministic(tmp_path) -> None:
    matrix = torch.randint(0, 9, (10, 10))
    save_confusion_matrix(matrix, tmp_path / "a.png", "test accuracy 50.00%")
    save_confusion_matrix(matrix, tmp_path / "b.png", "test accuracy 50.00%")
    save_confusion_matrix(matrix.flip(0), tmp_path / "c.png", "test accuracy 50.00%")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()
