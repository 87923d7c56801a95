"""One semantic damage per kind of file a run holds: a type, a key's type, a container, a flag, a member,
a frame, a channel. Each damage is minimal: only the intended change reaches the file's bytes.

``EXTRAS`` are files added to both twins before one is damaged (kinds a trainer run lacks: a CSV, a
TensorBoard folder, a YAML with an integer key, an RGB picture). ``DAMAGES`` maps a name to
``(relative path, function(path))``. Extension point: the torch/pickle readers add their damages to
``DAMAGES`` the same way (a dict key vs its string, a tuple vs a list, ``requires_grad``, a zip member),
keyed ``"pickle-..."``; ``tests/unit/compare/test_damage.py`` runs every entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Damage = Callable[[Path], None]


def _sub_once(pattern: str, repl: str) -> Damage:
    def damage(path: Path) -> None:
        text = path.read_text()
        new, count = re.subn(pattern, repl, text, count=1, flags=re.MULTILINE)
        assert count == 1 and new != text, (path, pattern)
        path.write_text(new)

    return damage


def _jsonl_row(change: Callable[[dict[str, Any]], None], line: int = 0) -> Damage:
    """Re-dump one JSONL row as the writer does (``json.dumps``): only ``change`` reaches the bytes."""

    def damage(path: Path) -> None:
        lines = path.read_text().splitlines(keepends=True)
        row = json.loads(lines[line])
        change(row)
        lines[line] = json.dumps(row) + "\n"
        path.write_text("".join(lines))

    return damage


def _flatten_first_nested(row: dict[str, Any]) -> None:
    """{"approx": {"train_loss": x}} -> {"approx.train_loss": x}: the same flat key, another shape."""
    key = next(k for k, v in row.items() if isinstance(v, dict))
    nested = row.pop(key)
    row.update({f"{key}.{k}": v for k, v in nested.items()})


def _picture(change: Callable[[Any], Any], **save: Any) -> Damage:
    def damage(path: Path) -> None:
        from PIL import Image

        with Image.open(path) as image:
            image.load()
            changed = change(image)
        changed.save(path, **save)

    return damage


def _one_channel(image: Any) -> Any:
    from PIL import Image

    pixels = np.array(image.convert("RGB"))
    pixels[0, 0, 1] ^= 1
    return Image.fromarray(pixels)


def _second_frame(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        image.save(path, save_all=True, append_images=[image.point(lambda v: 255 - v)])


def _tensorboard_point(path: Path) -> None:
    """One more scalar point in the folder's event stream (a second event file, as a resumed writer)."""
    _write_events(path.parent, ".extra", extra=True)


def _write_events(folder: Path, suffix: str, extra: bool = False) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder), filename_suffix=suffix)
    if extra:
        writer.add_scalar("loss", 0.125, 2)
    else:
        writer.add_scalar("loss", 0.5, 0)
        writer.add_histogram("w", np.arange(6.0), 0)
        writer.add_text("note", "seed 5", 0)
    writer.close()


def _histogram(path: Path) -> None:
    """The histogram's values differ; the scalars do not (a new stream written in place)."""
    from torch.utils.tensorboard import SummaryWriter

    folder = path.parent
    for old in folder.iterdir():
        old.unlink()
    writer = SummaryWriter(str(folder), filename_suffix=".b")
    writer.add_scalar("loss", 0.5, 0)
    writer.add_histogram("w", np.arange(6.0) + 1, 0)
    writer.add_text("note", "seed 5", 0)
    writer.close()


def add_extras(run: Path) -> None:
    """Files of kinds a trainer run lacks, added alike to both twins."""
    extra = run / "extra"
    extra.mkdir(exist_ok=True)
    (extra / "table.csv").write_text("epoch,loss,loss,note\n1,0.5,0.5,ok\n2,0.25,0.25,(absent)\n")
    (extra / "keys.yaml").write_text("1: one\nflags:\n  enabled: true\nsizes: 3\n")
    (extra / "record.json").write_text('{"a": {"b": 1}, "value": [5]}\n')
    from PIL import Image

    rgb = np.stack([np.arange(48, dtype=np.uint8).reshape(6, 8) * k for k in (1, 2, 3)], axis=2)
    Image.fromarray(rgb).save(extra / "rgb.png")
    grey = [v for i in range(256) for v in (i, i, i)]
    palette = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8) % 4, mode="P")
    palette.putpalette(grey)
    palette.save(extra / "palette.png")
    _write_events(extra / "tb", ".a")


def tensorboard_file(run: Path) -> str:
    return str(next((run / "extra" / "tb").iterdir()).relative_to(run))


def _palette(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        palette = image.getpalette()
        palette[3:6] = [255, 0, 0]
        image.putpalette(palette)
        image.save(path)


DAMAGES: dict[str, tuple[str, Damage]] = {
    # YAML: a value's type, a key's type, a container, a flag, a duplicate key
    "yaml-type": ("resolved_config.yaml", _sub_once(r"^(\s+keep_last): (\d+)$", r"\1: '\2'")),
    "yaml-key-type": ("extra/keys.yaml", _sub_once(r"^1: one$", "'1': one")),
    "yaml-container": ("resolved_config.yaml", _sub_once(r"^(\s+latent_dim): (\d+)$", r"\1: [\2]")),
    "yaml-flag": ("extra/keys.yaml", _sub_once(r"enabled: true", "enabled: false")),
    "yaml-duplicate-key": ("extra/keys.yaml", _sub_once(r"^sizes: 3$", "sizes: 3\nsizes: 3")),
    # JSON and JSONL: types, containers, the shape behind a flat key, a member row
    "jsonl-type": ("metrics.jsonl", _jsonl_row(lambda r: r.update(epoch=float(r["epoch"])))),
    "jsonl-bool": ("trace.jsonl", _jsonl_row(lambda r: r.update(step=True))),
    "jsonl-container": ("metrics.jsonl", _jsonl_row(lambda r: r.update(step=[r["step"]]))),
    "jsonl-flat-key": ("metrics.jsonl", _jsonl_row(_flatten_first_nested)),
    "jsonl-member": ("trace.jsonl", _sub_once(r"\A(.*\n)", r"\1\1")),
    "json-flat-key": ("extra/record.json", _sub_once(r'\{"a": \{"b": 1\}', '{"a.b": 1')),
    "json-value-object": ("extra/record.json", _sub_once(r"\[5\]", '[{"value": 5}]')),
    "json-manifest-type": ("manifest.json", _sub_once(r"^(\s+)(\d+)$", r'\1"\2"')),
    # CSV: a duplicated column's cell, the report's own placeholder
    "csv-duplicate-column": ("extra/table.csv", _sub_once(r"^1,0.5,0.5,", "1,0.75,0.5,")),
    "csv-placeholder": ("extra/table.csv", _sub_once(r",\(absent\)$", "")),  # the cell is missing now
    # logs: a member line, a value
    "log-member": ("vae_mnist.log", _sub_once(r"\A.*\n", "")),
    "log-value": ("vae_mnist.log", _sub_once(r"(loss=\d+\.\d)\d", r"\g<1>9")),
    # pictures: mode, palette, transparency, a frame, one channel
    "png-mode": ("extra/palette.png", _picture(lambda im: im.convert("L"))),
    "png-palette": ("extra/palette.png", _palette),
    "png-trns": ("extra/rgb.png", _picture(lambda im: im, transparency=(0, 0, 0))),
    "png-frame": ("images/samples.png", _second_frame),
    "png-channel": ("extra/rgb.png", _picture(_one_channel)),
    # TensorBoard: one more point, a histogram
    "tensorboard-point": ("{tensorboard}", _tensorboard_point),
    "tensorboard-histogram": ("{tensorboard}", _histogram),
}


def apply(run: Path, name: str) -> str:
    """Apply damage ``name`` to ``run``; the relative path damaged."""
    rel, damage = DAMAGES[name]
    rel = tensorboard_file(run) if rel == "{tensorboard}" else rel
    damage(run / rel)
    return rel
