"""Deterministic, MNIST-format synthetic handwritten digits for offline runs and tests.

The output must be byte-identical on every machine, platform and numpy version, because twin runs on
different hosts compare hashes of what they trained on. Hence:

* randomness comes from a splitmix64 hash of ``(seed, sample index, stream)`` on uint64 arrays, never
  from numpy's distributions (their streams are not promised stable across versions), and sample ``i``
  depends only on ``(seed, i)``, so a small request yields a prefix of a large one;
* floats come from integers by exact operations only (``+ - * /``, ``sqrt``, ``floor``, ``min``/``max``,
  all correctly rounded by IEEE 754); no libm transcendentals, no BLAS, no float sums whose order could
  vary. Rotations use the rational (Cayley) form, arcs a hard-coded cosine table;
* intensities are quantised to uint8 with an explicit rule: ``floor(v * 255 + 0.5)``.

Each digit is a few strokes (polylines through control points) that get per-point and per-stroke jitter,
a random aspect/shear/rotation, MNIST's normalisation (ink fitted into a 20x20 box, centred in 28x28)
with a small translation, and anti-aliased rendering from the distance to densely sampled stroke points.
"""

from __future__ import annotations

import hashlib
import math
import struct
from pathlib import Path

import numpy as np

from twinrun.record.runs import write_bytes

__all__ = ["generate_digits", "write_idx_images", "write_idx_labels", "write_mnist_raw"]

_SIDE = 28
_PAD = 3  # canvas margin: the 7x7 splat window around a point reaches 3 pixels out
_CANVAS = _SIDE + 2 * _PAD
_CHUNK = 8192  # samples per chunk: bounds memory (a few tens of MiB) independently of ``count``
_SPACING_PX = 0.6  # dense point spacing; point-distance then differs from segment-distance by < 0.05 px
_NOMINAL_PX = 22.0  # template unit height in pixels used to size the dense sampling (covers max scale)
_EDGE_PX = 1.0  # width of the anti-aliased ramp at the stroke edge

# cos of 0, 15, ..., 90 degrees (rounded literals, so arcs never depend on the platform's libm).
_COS15 = (1.0, 0.965926, 0.866025, 0.707107, 0.5, 0.258819, 0.0)


def _cos_sin(deg: int) -> tuple[float, float]:
    """cos/sin of a multiple of 15 degrees from the table, by quadrant symmetry."""
    if deg % 15:
        raise ValueError(f"arc angles are multiples of 15 degrees, got {deg}")
    quadrant, k = divmod((deg // 15) % 24, 6)
    c, s = _COS15[k], _COS15[6 - k]
    return ((c, s), (-s, c), (-c, -s), (s, -c))[quadrant]


def _arc(cx: float, cy: float, rx: float, ry: float, a0: int, a1: int) -> list[tuple[float, float]]:
    """Points of an elliptic arc from ``a0`` to ``a1`` degrees (90 = top: y grows downwards)."""
    step = 15 if a1 >= a0 else -15
    return [(cx + rx * c, cy - ry * s) for c, s in map(_cos_sin, range(a0, a1 + step, step))]


Stroke = list[tuple[float, float]]
# Two variants per label (repeated where one suffices). Units: height 1 (y from -0.5 top to 0.5 bottom).
_TEMPLATES: dict[int, tuple[list[Stroke], list[Stroke]]] = {
    0: ([_arc(0, 0, 0.27, 0.48, 105, 480)], [_arc(0, 0, 0.3, 0.47, 75, 450)]),
    1: ([[(0.02, -0.5), (0.01, 0.0), (0.0, 0.5)]], [[(-0.14, -0.3), (0.04, -0.5), (0.02, 0.0), (0.0, 0.5)]]),
    2: (
        [[*_arc(0, -0.22, 0.27, 0.27, 165, -30), (-0.3, 0.48), (0.32, 0.48)]],
        [[*_arc(0, -0.24, 0.26, 0.25, 165, -45), (-0.28, 0.42), (-0.2, 0.52), (0.32, 0.44)]],
    ),
    3: ([_arc(0, -0.25, 0.25, 0.24, 150, -105) + _arc(0, 0.23, 0.28, 0.27, 105, -150)],) * 2,
    4: (
        [[(0.12, -0.5), (-0.3, 0.14), (0.32, 0.14)], [(0.14, -0.5), (0.14, 0.0), (0.13, 0.5)]],
        [
            [(-0.2, -0.5), (-0.24, -0.15), (-0.27, 0.12), (0.3, 0.12)],
            [(0.16, -0.42), (0.15, 0.05), (0.14, 0.5)],
        ],
    ),
    5: (
        [
            [(0.26, -0.48), (-0.16, -0.48)],
            [(-0.18, -0.48), (-0.22, -0.05), *_arc(0, 0.2, 0.28, 0.27, 120, -150)],
        ],
    )
    * 2,
    6: ([[(0.2, -0.48), (0.03, -0.36), (-0.13, -0.17), (-0.24, 0.06), *_arc(0, 0.22, 0.25, 0.26, 180, 525)]],)
    * 2,
    7: (
        [[(-0.3, -0.48), (0.3, -0.48), (0.12, 0.0), (-0.04, 0.5)]],
        [[(-0.3, -0.48), (0.3, -0.48), (0.12, 0.0), (-0.04, 0.5)], [(-0.04, 0.02), (0.26, 0.0)]],
    ),
    8: ([_arc(0, -0.26, 0.21, 0.23, -90, 270), _arc(0, 0.22, 0.26, 0.27, 90, 450)],) * 2,
    9: (
        [[*_arc(0, -0.2, 0.25, 0.25, 0, 360), (0.24, 0.15), (0.2, 0.5)]],
        [[*_arc(0, -0.22, 0.24, 0.24, 0, 375), (0.2, 0.1), (0.08, 0.5)]],
    ),
}


class _Shape:
    """A template as arrays: control points, and dense points as interpolations between them."""

    def __init__(self, strokes: list[Stroke]) -> None:
        ctrl, a, b, t, sid = [], [], [], [], []
        for s, stroke in enumerate(strokes):
            base = len(ctrl)
            ctrl.extend(stroke)
            for j in range(len(stroke) - 1):
                (x0, y0), (x1, y1) = stroke[j], stroke[j + 1]
                dx, dy = x1 - x0, y1 - y0  # products, not ** 2: pow() is libm, sqrt is IEEE-exact
                length_px = math.sqrt(dx * dx + dy * dy) * _NOMINAL_PX
                n = max(1, math.ceil(length_px / _SPACING_PX))
                a += [base + j] * n
                b += [base + j + 1] * n
                t += [k / n for k in range(n)]
            a.append(base + len(stroke) - 1)
            b.append(base + len(stroke) - 1)
            t.append(0.0)
            sid += [s] * (len(a) - len(sid))
        self.ctrl = np.array(ctrl, dtype=np.float64)  # [C, 2]
        self.a, self.b = np.array(a), np.array(b)
        self.t = np.array(t, dtype=np.float64)[None, :]
        self.stroke = np.array(sid)
        self.n_strokes = len(strokes)


_SHAPES = [_Shape(strokes) for label in range(10) for strokes in _TEMPLATES[label]]
_MAX_STROKES = max(s.n_strokes for s in _SHAPES)

# Stream numbers of the per-sample hash: one independent uniform per parameter.
_S_LABEL, _S_VARIANT, _S_ROT, _S_SHEAR, _S_ASPECT, _S_SIZE, _S_TX, _S_TY, _S_WIDTH = range(9)
_S_STROKE_WIDTH = 9
_S_STROKE_SHIFT = _S_STROKE_WIDTH + _MAX_STROKES
_S_POINT = _S_STROKE_SHIFT + 2 * _MAX_STROKES

_U64 = np.uint64
_GAMMA = _U64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic is well defined for arrays)."""
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def _sample_keys(seed: int, index: np.ndarray) -> np.ndarray:
    """One uint64 key per sample, a function of ``(seed, index)`` only."""
    seed_key = _mix(np.array([seed % 2**64], dtype=np.uint64) + _GAMMA)
    return _mix(seed_key + (index.astype(np.uint64) + _U64(1)) * _GAMMA)


def _streams(keys: np.ndarray, first: int, count: int) -> np.ndarray:
    """Raw uint64 draws ``[n, count]`` for streams ``first .. first + count - 1`` of each sample."""
    stream = np.arange(first + 1, first + count + 1, dtype=np.uint64)
    return _mix(keys[:, None] ^ _mix(stream * _GAMMA)[None, :])


def _uniform(keys: np.ndarray, first: int, count: int, lo: float, hi: float) -> np.ndarray:
    """Uniforms in ``[lo, hi)``: 53 high bits times 2**-53 is exact, and the affine map is IEEE."""
    u = (_streams(keys, first, count) >> _U64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
    return lo + (hi - lo) * u


def _render(shape: _Shape, keys: np.ndarray) -> np.ndarray:
    """Render one template for every key: uint8 ``[n, 28, 28]``."""
    n, n_ctrl = len(keys), len(shape.ctrl)

    def col(stream: int) -> np.ndarray:
        return _uniform(keys, stream, 1, 0.0, 1.0)  # [n, 1], broadcasts against [n, P]

    # Jitter: every control point a little (wobble), every stroke as a whole (misplaced parts).
    jitter = _uniform(keys, _S_POINT, 2 * n_ctrl, -0.035, 0.035).reshape(n, n_ctrl, 2)
    shift = _uniform(keys, _S_STROKE_SHIFT, 2 * _MAX_STROKES, -0.04, 0.04).reshape(n, _MAX_STROKES, 2)
    ctrl = shape.ctrl[None] + jitter
    dense = ctrl[:, shape.a] * (1.0 - shape.t[..., None]) + ctrl[:, shape.b] * shape.t[..., None]
    dense = dense + shift[:, shape.stroke]
    x, y = dense[..., 0], dense[..., 1]  # [n, P]
    # Aspect, slant (biased to the right like most handwriting), then rotation by up to about 15
    # degrees: tan(theta/2) uniform in +-tan(7.5 deg), cos/sin from the rational Cayley form.
    x = x * (0.75 + 0.5 * col(_S_ASPECT))
    x = x - (-0.15 + 0.5 * col(_S_SHEAR)) * y
    h = -0.1317 + 0.2634 * col(_S_ROT)
    cos, sin = (1.0 - h * h) / (1.0 + h * h), 2.0 * h / (1.0 + h * h)
    x, y = cos * x - sin * y, sin * x + cos * y
    # MNIST normalisation: the ink's bounding box fits a 20x20 box (here a bit smaller at random) and
    # sits about the centre; min/max are exact, so this stays deterministic.
    radius = 0.9 + 0.9 * col(_S_WIDTH)  # half stroke width in pixels
    radius = radius * (0.85 + 0.3 * _uniform(keys, _S_STROKE_WIDTH, _MAX_STROKES, 0.0, 1.0))[:, shape.stroke]
    x0, x1 = x.min(1, keepdims=True), x.max(1, keepdims=True)
    y0, y1 = y.min(1, keepdims=True), y.max(1, keepdims=True)
    target = 20.0 * (0.82 + 0.18 * col(_S_SIZE)) - 2.0 * radius.max(1, keepdims=True) - _EDGE_PX
    scale = target / np.maximum(np.maximum(x1 - x0, y1 - y0), 1e-6)
    x = (x - 0.5 * (x0 + x1)) * scale + (13.5 - 1.5 + 3.0 * col(_S_TX))
    y = (y - 0.5 * (y0 + y1)) * scale + (13.5 - 1.5 + 3.0 * col(_S_TY))
    x, y = np.clip(x, 0.0, _SIDE - 1.0), np.clip(y, 0.0, _SIDE - 1.0)
    # Splat every dense point over a 7x7 pixel window; intensity ramps from 1 at the stroke core to 0
    # over _EDGE_PX (anti-aliasing); overlapping strokes combine by max, which is order-independent.
    offsets = np.arange(-_PAD, _PAD + 1)
    fx, fy = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    px, py = fx[..., None] + offsets, fy[..., None] + offsets  # [n, P, 7] pixel centres
    dx, dy = px - x[..., None], py - y[..., None]
    dx2, dy2 = (dx * dx).astype(np.float32), (dy * dy).astype(np.float32)
    dist = np.sqrt(dy2[..., :, None] + dx2[..., None, :])  # [n, P, 7, 7]
    reach = (radius + 0.5 * _EDGE_PX).astype(np.float32)[..., None, None]
    value = np.clip((reach - dist) * np.float32(1.0 / _EDGE_PX), 0.0, 1.0)
    rows, cols = (py + _PAD)[..., :, None], (px + _PAD)[..., None, :]
    flat = (np.arange(n)[:, None, None, None] * _CANVAS + rows) * _CANVAS + cols
    keep = value > 0.0  # about half the window is outside the stroke; skipping it halves the scatter
    canvas = np.zeros(n * _CANVAS * _CANVAS, dtype=np.float32)
    np.maximum.at(canvas, flat[keep], value[keep])
    canvas = canvas.reshape(n, _CANVAS, _CANVAS)[:, _PAD:-_PAD, _PAD:-_PAD]
    return np.floor(canvas * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)


def generate_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """images uint8 [count, 28, 28] (0 = background, 255 = ink, like MNIST), labels uint8 [count] (0..9).

    Sample ``i`` depends only on ``(seed, i)``: ``generate_digits(n, s)`` is a prefix of any longer call.
    Any int is a valid seed (it is taken modulo 2**64).
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    images = np.zeros((count, _SIDE, _SIDE), dtype=np.uint8)
    labels = np.zeros(count, dtype=np.uint8)
    for start in range(0, count, _CHUNK):
        keys = _sample_keys(seed, np.arange(start, min(start + _CHUNK, count), dtype=np.uint64))
        chunk_labels = (_streams(keys, _S_LABEL, 1)[:, 0] % _U64(10)).astype(np.int64)
        variant = (_streams(keys, _S_VARIANT, 1)[:, 0] >> _U64(63)).astype(np.int64)
        shape_id = chunk_labels * 2 + variant
        labels[start : start + len(keys)] = chunk_labels
        for sid in np.unique(shape_id):
            sel = np.flatnonzero(shape_id == sid)
            images[start + sel] = _render(_SHAPES[sid], keys[sel])
    return images, labels


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """Write uint8 ``[n, rows, cols]`` images as an IDX3 ubyte file (magic 2051, big-endian dims)."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"images must be uint8 [n, rows, cols], got {images.dtype} {images.shape}")
    write_bytes(path, struct.pack(">IIII", 2051, *images.shape) + np.ascontiguousarray(images).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    """Write uint8 ``[n]`` labels as an IDX1 ubyte file (magic 2049)."""
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"labels must be uint8 [n], got {labels.dtype} {labels.shape}")
    write_bytes(path, struct.pack(">II", 2049, len(labels)) + labels.tobytes())


def _split_seed(seed: int, split: str) -> int:
    """A seed per split, so train and test never share samples."""
    return int.from_bytes(hashlib.sha256(f"twinrun-synthetic:{seed}:{split}".encode()).digest()[:8], "big")


def write_mnist_raw(raw_dir: Path, train_count: int, test_count: int, seed: int) -> None:
    """Write the four uncompressed MNIST raw files into ``raw_dir`` (created if missing).

    The t10k labels file is written last, so its presence means the set is complete.
    """
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    for prefix, count, split in (("train", train_count, "train"), ("t10k", test_count, "test")):
        images, labels = generate_digits(count, _split_seed(seed, split))
        write_idx_images(raw_dir / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw_dir / f"{prefix}-labels-idx1-ubyte", labels)
