"""How the representative seed's decision boundary forms during training, from train@'s snapshots.

Pure: saved layers, snapshot weights and points in; probabilities, frames and GIF bytes out (no
TensorFlow, no files). A GIF frame is drawn with NumPy (regions and points) and Pillow (its two
lines of text) rather than matplotlib: there are ~30 per experiment, and all new figures together
may add at most 2 s to evaluate@. Measured: ~2 ms a frame this way, ~20 ms with matplotlib (Agg)
plus ~7 ms to quantise its colours for the GIF.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from intuition.figures import COLORS, REGION_ALPHA, EvolutionFrame, RegionsView
from intuition.network import DenseLayer, predict_proba
from intuition.types import Grid, Points, Snapshots

# Points per axis of the evolution's grid, coarser than plots.grid_resolution (150): the largest
# model (4x100) needs ~0.9 s for 30 snapshots over 150², ~0.25 s over 80² (one BLAS thread). A GIF
# frame shows the grid at 3 pixels per point, a filmstrip panel is ~2 inches wide: ~75 is enough.
GRID_RESOLUTION = 73
SCALE = 3  # a GIF frame's pixels per grid point, along each axis: 219 x 219 for the plot
# Pixels above it: the experiment, the epoch and the validation accuracy. A frame is 219 x 256,
# the size of the thumbnails MLflow's image view shows, so MLflow keeps it as it is.
HEADER = 37
FRAME_MS, LAST_FRAME_MS = 300, 2500  # the trained model stays on screen before the GIF loops
# The shade of a region says how sure the model is there, in this many steps from chance (white)
# to certain (REGION_ALPHA x 2): few colours, so every frame fits a GIF palette exactly and compresses.
SHADES = 8
FILMSTRIP_PANELS = 8


def snapshot_layers(model: Sequence, snapshots: Snapshots, seed: int) -> list[list]:
    """One layer list per snapshot: the saved model's layers before its first Dense layer (fixed
    preprocessing, no trained weights), then the seed's Dense weights at that snapshot with the
    saved model's activations."""
    first = next(i for i, layer in enumerate(model) if isinstance(layer, DenseLayer))
    fixed, dense = list(model[:first]), model[first:]
    return [fixed + [DenseLayer(kernel[s, seed], bias[s, seed], layer.activation)
                     for layer, kernel, bias in zip(dense, snapshots.kernels, snapshots.biases, strict=True)]
            for s in range(len(snapshots.epochs))]


def val_accuracy_at(history: pd.DataFrame, seed: int, epochs: Sequence[int]) -> list[float]:
    """The seed's validation accuracy at each epoch (history.csv); after it diverged, that of the
    last epoch whose weights it kept, as its snapshots do."""
    rows = history[history["seed"] == seed].set_index("epoch")["val_accuracy"].astype(float)
    rows = rows[np.isfinite(rows)]
    return [float(rows[rows.index <= e].iloc[-1]) if (rows.index <= e).any() else math.nan for e in epochs]


def evolution_frames(model: Sequence, snapshots: Snapshots, seed: int, history: pd.DataFrame, grid: Grid,
                     train: Points, test: Points) -> list[EvolutionFrame]:
    """The seed's class probabilities over `grid` and its test predictions (the red crosses) at
    every snapshot. A frame's score is its validation accuracy from history.csv; the test accuracy
    is the final model's alone (seeds.csv)."""
    frames = []
    for epoch, layers, accuracy in zip(snapshots.epochs, snapshot_layers(model, snapshots, seed),
                                       val_accuracy_at(history, seed, snapshots.epochs)):
        with np.errstate(over="ignore"):  # a sigmoid on raw inputs (±100) saturates: exp overflows, to 0 or 1
            proba = predict_proba(layers, np.vstack([grid.points, test.X]))
        grid_proba, test_proba = proba[: grid.xx.size], proba[grid.xx.size:]
        test_pred = np.argmax(np.nan_to_num(test_proba, nan=-1.0), axis=1)
        frames.append(EvolutionFrame(int(epoch), accuracy, RegionsView(
            grid, grid.reshape(grid_proba), train, test, test_pred)))
    return frames


def filmstrip_frames(frames: Sequence[EvolutionFrame], n: int = FILMSTRIP_PANELS) -> list[EvolutionFrame]:
    """`n` of the frames, evenly spread over the (log-spaced) snapshots, the first and last included."""
    picked = np.unique(np.round(np.linspace(0, len(frames) - 1, min(n, len(frames)))).astype(int))
    return [frames[i] for i in picked]


# --- Drawing the GIF's frames ---------------------------------------------------------------------
# A frame is an image of indices into one fixed palette: the region shades of every class, the
# class colours, black, red and a ramp of greys for the text. The GIF stores them as they are
# (no per-frame colour quantisation, which would cost more than drawing); `rgb` gives the colours.

WHITE, BLACK, RED, GREY, BAR, FIRST_TEXT_GREY = range(6)  # GREY: where the output is NaN/inf
TEXT_GREYS = 16  # anti-aliased text: black to white in this many steps
FIRST_CLASS = FIRST_TEXT_GREY + TEXT_GREYS  # then per tab10 colour: the colour, then its SHADES region shades


def _palette() -> np.ndarray:
    fixed = [(1, 1, 1), (0, 0, 0), (0.85, 0, 0), (0.85, 0.85, 0.85), (0.45, 0.45, 0.45)]
    greys = [(g, g, g) for g in np.linspace(0, 1, TEXT_GREYS)]
    alphas = 2 * REGION_ALPHA * np.arange(1, SHADES + 1) / SHADES  # region shades: light to strong
    classes = [shade for color in np.asarray(COLORS)[:, :3]
               for shade in [color, *(1 - a * (1 - color) for a in alphas)]]
    return np.round(np.array(fixed + greys + classes) * 255).astype(np.uint8)


PALETTE = _palette()  # (111, 3) uint8: what each index of a frame shows (a GIF palette holds 256)


def _class_index(c, shade=0):
    """The palette index of class `c`'s colour (shade 0) or its region shade 1..SHADES; class i
    is tab10 colour i (mod 10), as in every figure."""
    return FIRST_CLASS + (np.asarray(c) % len(COLORS)) * (SHADES + 1) + shade


def _pixel(values, low, high, cells: int) -> np.ndarray:
    """Data coordinates -> the pixel at the centre of the nearest grid point's block, as the regions are drawn."""
    fraction = (np.asarray(values, dtype=float) - low) / (high - low)
    return np.clip(np.round(fraction * (cells - 1)) * SCALE + SCALE // 2, 0, cells * SCALE - 1).astype(int)


def _stamp(image, rows, cols, index, offsets) -> None:
    """Paint a shape (pixel `offsets` around the point) at each point, in palette `index` (one, or one per point)."""
    dy, dx = offsets
    rr = np.clip(rows[:, None] + dy, 0, image.shape[0] - 1)
    cc = np.clip(cols[:, None] + dx, 0, image.shape[1] - 1)
    image[rr, cc] = np.broadcast_to(np.reshape(index, (-1, 1)), rr.shape)


def _disk(radius: float) -> tuple[np.ndarray, np.ndarray]:
    r = int(math.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    inside = dy**2 + dx**2 <= radius**2
    return dy[inside], dx[inside]


DIAGONAL = np.arange(-3, 4)
CROSS = (np.concatenate([DIAGONAL, DIAGONAL]), np.concatenate([DIAGONAL, -DIAGONAL]))


def regions_image(view: RegionsView) -> np.ndarray:
    """(rows, cols) x SCALE palette indices: the winning class's tab10 colour over white, stronger where
    the model is surer (SHADES steps from chance to certain), each grid point a SCALE x SCALE block
    (as pcolormesh draws a grid); then the points as the static figures draw them: training points
    small, test points outlined, misclassified test points a red x."""
    proba = np.asarray(view.proba, dtype=float)[::-1]  # image row 0 is the top, the grid's row 0 the lowest x2
    k = proba.shape[-1]
    valid = np.isfinite(proba).all(axis=-1)
    winner = np.argmax(np.nan_to_num(proba, nan=-1.0), axis=-1)
    sure = np.clip((np.nan_to_num(proba.max(axis=-1)) - 1 / k) / (1 - 1 / k), 0, 1)
    shade = np.ceil(sure * SHADES).astype(int)
    cells = np.where(shade > 0, _class_index(winner, shade), WHITE)
    cells = np.where(valid, cells, GREY).astype(np.uint8)
    image = np.repeat(np.repeat(cells, SCALE, axis=0), SCALE, axis=1)

    grid = view.grid
    rows, cols = proba.shape[:2]

    def place(points):
        return (rows * SCALE - 1 - _pixel(points.X[:, 1], grid.yy.min(), grid.yy.max(), rows),
                _pixel(points.X[:, 0], grid.xx.min(), grid.xx.max(), cols))

    train_rows, train_cols = place(view.train)
    _stamp(image, train_rows, train_cols, _class_index(view.train.y), _disk(1))
    test_rows, test_cols = place(view.test)
    _stamp(image, test_rows, test_cols, BLACK, _disk(3.2))
    _stamp(image, test_rows, test_cols, _class_index(view.test.y), _disk(2.2))
    missed = np.asarray(view.test_pred) != view.test.y
    _stamp(image, test_rows[missed], test_cols[missed], RED, CROSS)
    return image


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _text_indices(lines: Sequence[str], width: int) -> np.ndarray:
    """(HEADER, width) palette indices: `lines` in black on white, anti-aliased in TEXT_GREYS
    steps, in 12-pixel type or smaller if a line would not fit."""
    picture = Image.new("L", (width, HEADER), 255)
    draw = ImageDraw.Draw(picture)
    for i, line in enumerate(lines):
        size = 12
        while size > 7 and draw.textlength(line, font=_font(size)) > width - 6:
            size -= 1
        draw.text((3, 1 + 15 * i), line, fill=0, font=_font(size))
    level = np.round(np.asarray(picture) / 255 * (TEXT_GREYS - 1)).astype(np.uint8)
    return np.where(level == TEXT_GREYS - 1, WHITE, FIRST_TEXT_GREY + level).astype(np.uint8)


def render(frame: EvolutionFrame, title: str, epochs: int) -> np.ndarray:
    """One GIF frame as palette indices, (HEADER + plot height, plot width) uint8: the title, the
    epoch and the validation accuracy, a bar filling up with the epochs, and the regions below."""
    regions = regions_image(frame.view)
    width = regions.shape[1]
    accuracy = f"{frame.val_accuracy:.3f}" if np.isfinite(frame.val_accuracy) else "n/a"
    header = _text_indices([title, f"epoch {frame.epoch} of {epochs}   val accuracy {accuracy}"], width)
    header[-4:-1, : round(width * frame.epoch / max(epochs, 1))] = BAR
    return np.vstack([header, regions])


def rgb(frame: np.ndarray) -> np.ndarray:
    """A rendered frame's colours, (height, width, 3) uint8."""
    return PALETTE[frame]


def picture(frame: np.ndarray) -> Image.Image:
    """A rendered frame as a palette image: what the GIF stores and what MLflow logs (measured:
    ~30 % faster to log than the RGB array, and smaller)."""
    image = Image.fromarray(frame)  # "L"; putpalette makes it "P"
    image.putpalette(PALETTE.ravel().tolist())
    return image


def gif_bytes(frames: Sequence[np.ndarray]) -> bytes:
    """The rendered frames as a looping GIF with one palette, each FRAME_MS on screen and the last
    LAST_FRAME_MS."""
    pictures = [picture(frame) for frame in frames]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], loop=0,
                     duration=[FRAME_MS] * (len(pictures) - 1) + [LAST_FRAME_MS])
    return buffer.getvalue()
