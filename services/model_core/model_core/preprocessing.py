"""The preprocessing contract (DESIGN §3, steps 2–4) as the torch reference.

Every service must reproduce these numbers; torch-serving runs :func:`preprocess_crop`, and the ONNX graph the
harness exports (its ``model.onnx_graph``) is the same contract written in ONNX operators.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

RESIZE_SHORT_SIDE = 256
CROP_SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def resized_size(height: int, width: int, short_side: int = RESIZE_SHORT_SIDE) -> tuple[int, int]:
    """Shorter side to ``short_side``, longer side ``floor(short_side * long / short)``."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    short = min(height, width)
    return (short_side * height) // short, (short_side * width) // short


def crop_offsets(height: int, width: int, crop: int = CROP_SIZE) -> tuple[int, int]:
    """Top and left of a centred crop; halves round to even, as Python's ``round`` and ONNX ``Round`` do."""
    return round((height - crop) / 2), round((width - crop) / 2)


def preprocess(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """RGB uint8 ``H×W×3`` → normalized float32 ``1×3×224×224``."""
    pixels = torch.as_tensor(image)
    if pixels.dtype != torch.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3, got {pixels.dtype} {tuple(pixels.shape)}")
    x = pixels.permute(2, 0, 1).unsqueeze(0).to(torch.float32)
    new_h, new_w = resized_size(x.shape[2], x.shape[3])
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
    top, left = crop_offsets(new_h, new_w)
    x = x[:, :, top : top + CROP_SIZE, left : left + CROP_SIZE]
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


#: Output lines weighed together in one matrix product by :func:`preprocess_crop` (and the ONNX graph): 8 rather
#: than 4 gathers fewer input lines (a window of 8 outputs overlaps less with its neighbours') for a product of
#: twice the rows, which costs little more. Interleaved with the network and a decode (2026-12-05, Intel Xeon),
#: 1200×727: torch's preprocessing ×0.85 (2.58 → 2.20 ms), the ONNX graph's ×0.89 with ROWS_CHUNKS 7.
BLOCK = 8
#: :func:`preprocess_crop` makes the crop's output rows in at least this many parts, each through both passes before
#: the next, so that a part's floats stay in cache between the two: ×0.81–0.90 against one part (same bits); 4 parts
#: ×0.84–0.92, 7 ×0.87–0.96 (same run, 1200×727, 2026-12-05, Intel Xeon).
CROP_PARTS = 2
#: ... and in more where a part's input rows as floats would exceed this. Two parts of a 4000×3000 photograph are
#: 55 MB each, over glibc's mmap threshold (32 MB in the images, serving_common.allocator), so each was mapped and
#: page-faulted afresh (23,000 faults a call, none in 8 MB parts): 63 → 20 ms; 6000×4000 105 → 29 ms, 3000×2000
#: 11.3 → 9.1 ms (medians of 7 interleaved calls, parts of 4 and 16 MB within 10 % of 8; 2026-12-05, Intel Xeon).
#: 1920×1080 and smaller keep two parts.
PART_BYTES = 8 * 2**20


def crop_parts(groups: int, window: int, line_floats: int) -> int:
    """How many parts :func:`preprocess_crop` makes: :data:`CROP_PARTS`, or more where ``groups`` windows of
    ``window`` input rows of ``line_floats`` floats would exceed :data:`PART_BYTES` a part; at most a group a part."""
    groups_a_part = max(1, PART_BYTES // (window * line_floats * 4))
    return min(groups, max(CROP_PARTS, -(-groups // groups_a_part)))


@functools.lru_cache(maxsize=64)
def crop_windows(
    in_size: int, out_size: int, start: int, count: int = CROP_SIZE, block: int = BLOCK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Output pixels ``start … start + count - 1`` of an antialiased bilinear resize ``in_size → out_size`` along
    one axis, as matrix products over windows of the input: ``(indices, weights)``.

    Output pixels go in groups of ``block``; each group reads one window of ``length`` consecutive input pixels
    (its first pixel's first tap to its last pixel's last), ``indices`` ``[groups * length]`` (clamped into the
    image), ``weights`` ``[groups, block, length]``, so that ``output[g, j] = Σ_p weights[g, j, p] ·
    input[indices[g * length + p]]``.

    The weights are torch's ``_upsample_bilinear2d_aa`` (Pillow's resampler): output pixel ``i`` is centred at
    ``scale · (i + ½)`` in the input, its taps are the input pixels within ``support`` of it, weighed by a tent
    of that half-width and normalized. They depend only on the position and the scale, so the pixels a centre
    crop keeps can be computed alone, and a window's other pixels have weight 0. Cached by size: the tensors
    are shared, never written.
    """
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    support = torch.clamp(scale, min=1.0)  # bilinear: half the filter width (1), times the scale when shrinking
    centre = scale * (torch.arange(start, start + count, dtype=torch.float32) + 0.5)
    low = torch.clamp((centre - support + 0.5).to(torch.int64), min=0)  # truncation, as C++'s cast
    high = torch.clamp((centre + support + 0.5).to(torch.int64), max=in_size)
    groups = count // block
    first = low.view(groups, block)[:, 0]
    length = int((high.view(groups, block)[:, -1] - first).max())
    positions = (first[:, None] + torch.arange(length)[None, :])[:, None, :]  # [groups, 1, length]
    centre, low, high = (t.view(groups, block, 1) for t in (centre, low, high))
    distance = (positions.to(torch.float32) - centre + 0.5) / support
    inside = (positions >= low) & (positions < high)
    weights = torch.where(inside, torch.clamp(1.0 - distance.abs(), min=0.0), 0.0)
    weights = weights / weights.sum(dim=2, keepdim=True)
    return torch.clamp(positions.flatten(), max=in_size - 1), weights


class CropPlan(NamedTuple):
    """What :func:`preprocess_crop` computes for an image of one size: the crop's windows along each axis
    (:func:`crop_windows`) and the parts it makes the output rows in (:func:`crop_parts`)."""

    row_index: torch.Tensor
    row_weight: torch.Tensor
    col_index: torch.Tensor
    col_weight: torch.Tensor
    parts: int


def crop_plan(height: int, width: int) -> CropPlan:
    """The :class:`CropPlan` of a ``height × width`` image (not cached itself: the windows are, and the parts follow
    :data:`CROP_PARTS` and :data:`PART_BYTES` as they stand)."""
    new_h, new_w = resized_size(height, width)
    top, left = crop_offsets(new_h, new_w)
    row_index, row_weight = crop_windows(height, new_h, top)
    col_index, col_weight = crop_windows(width, new_w, left)
    groups, _, length = row_weight.shape
    line_floats = (int(col_index[-1]) - int(col_index[0]) + 1) * 3  # the crop's input columns, 3 channels each
    return CropPlan(row_index, row_weight, col_index, col_weight, crop_parts(groups, length, line_floats))


# Shaped for preprocess_crop's [column, channel, row] result; made once.
_CROP_MEAN = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1)
_CROP_STD = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1)


def preprocess_crop(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """:func:`preprocess` computed for the crop's pixels only (:func:`crop_windows`), equal to it up to float
    rounding; what torch-serving runs.

    Only the input rows the crop reads are made float. The output rows are made in parts (:func:`crop_plan`), each
    through both passes before the next: the rows pass and then the columns pass are each one batched matrix
    product over windows; between them the part's rows are turned so that columns are gathered as lines too.
    """
    with warnings.catch_warnings():
        # The services' decoded arrays are read-only (they share Pillow's bytes); nothing here writes to them.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        pixels = torch.as_tensor(image)
    if pixels.dtype != torch.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3, got {pixels.dtype} {tuple(pixels.shape)}")
    row_index, row_weight, col_index, col_weight, parts = crop_plan(pixels.shape[0], pixels.shape[1])
    row0, col0 = int(row_index[0]), int(col_index[0])
    region = pixels[row0 : int(row_index[-1]) + 1, col0 : int(col_index[-1]) + 1]
    groups, _, length = row_weight.shape
    row_locals = (row_index - row0).view(groups, length).chunk(parts)
    # Line 3x + c of the turned rows is column x of channel c.
    lines = (((col_index - col0) * 3)[:, None] + torch.arange(3)[None, :]).flatten()
    resized = torch.empty(CROP_SIZE, 3, CROP_SIZE)  # [column, 3, row]
    row = 0
    for local, weight in zip(row_locals, row_weight.chunk(parts), strict=True):
        # Rows pass: the windows' input rows (gathered as uint8, made float only then) → [rows, columns × 3].
        rows = region.index_select(0, local.flatten()).to(torch.float32).view(len(local), length, -1)
        vertical = torch.bmm(weight, rows).view(weight.shape[0] * weight.shape[1], -1)
        # Columns pass on the part turned → [224 columns, 3, rows].
        cols = vertical.t().contiguous().index_select(0, lines).view(*col_weight.shape[::2], -1)
        resized[:, :, row : row + vertical.shape[0]] = torch.bmm(col_weight, cols).view(CROP_SIZE, 3, -1)
        row += vertical.shape[0]
    return ((resized / 255.0 - _CROP_MEAN) / _CROP_STD).permute(1, 2, 0).unsqueeze(0).contiguous()
