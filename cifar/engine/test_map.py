"""The test set as a map: each test image at a point of the plane, close to the images the model sees alike (its
penultimate features reduced to 2-D by UMAP: python -m cifar.measure.test_map), coloured by what the page asks, and
the points inside an area or under a painted stroke. No UI in it (the page's tab is cifar/page/tabs/test_map.py).
"""

from dataclasses import dataclass
from functools import cached_property

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MAP_SIZE = 512  # the drawn map's side in pixels: the page's canvas, on which a painted stroke selects points
MARGIN = 0.03  # of each axis' range, around the outermost points
GREY, RED = "#9e9e9e", "#d62728"


@dataclass(frozen=True)
class TestMap:
    """The test images' points (N, 2) in the map's coordinates, and where each falls on the drawn map."""

    __test__ = False  # a name pytest would otherwise take for a test class

    points: np.ndarray

    @cached_property
    def bounds(self) -> tuple:
        """(x_min, x_max, y_min, y_max) of the drawn map: the points' range and a margin."""
        low, high = self.points.min(0), self.points.max(0)
        pad = (high - low) * MARGIN
        return float(low[0] - pad[0]), float(high[0] + pad[0]), float(low[1] - pad[1]), float(high[1] + pad[1])

    @cached_property
    def pixels(self) -> np.ndarray:
        """(N, 2) each point's (column, row) on the drawn map, y upwards as drawn."""
        x_min, x_max, y_min, y_max = self.bounds
        column = (self.points[:, 0] - x_min) / (x_max - x_min) * MAP_SIZE
        row = (y_max - self.points[:, 1]) / (y_max - y_min) * MAP_SIZE
        return np.clip(np.stack([column, row], 1).astype(int), 0, MAP_SIZE - 1)

    def in_area(self, x_min: float, x_max: float, y_min: float, y_max: float) -> np.ndarray:
        """The indices (test-set order) of the points inside the rectangle."""
        x, y = self.points[:, 0], self.points[:, 1]
        return np.flatnonzero((x >= x_min) & (x <= x_max) & (y >= y_min) & (y <= y_max))

    def under(self, painted: np.ndarray) -> np.ndarray:
        """The indices of the points under a painted mask (MAP_SIZE, MAP_SIZE), any non-zero pixel painted."""
        if painted.shape[:2] != (MAP_SIZE, MAP_SIZE):
            raise ValueError(f"a mask of the drawn map is {MAP_SIZE}x{MAP_SIZE} pixels, not {painted.shape[:2]}")
        mask = painted.reshape(MAP_SIZE, MAP_SIZE, -1).max(-1) > 0
        return np.flatnonzero(mask[self.pixels[:, 1], self.pixels[:, 0]])

    def draw(self, colouring: "Colouring") -> np.ndarray:
        """The map as the page shows it: (MAP_SIZE, MAP_SIZE, 3) uint8."""
        figure = self.figure(colouring)
        figure.canvas.draw()
        image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
        plt.close(figure)
        return image

    def figure(self, colouring: "Colouring"):
        """The map as a matplotlib figure, MAP_SIZE pixels a side, the axes filling it (so that a pixel of the drawn
        map is a place on it: `pixels`). Points drawn in a seeded random order, so that no class is always on top."""
        order = np.random.default_rng(0).permutation(len(self.points))
        figure = plt.figure(figsize=(MAP_SIZE / 100, MAP_SIZE / 100), dpi=100)
        axes = figure.add_axes((0, 0, 1, 1))
        x_min, x_max, y_min, y_max = self.bounds
        axes.set_xlim(x_min, x_max)
        axes.set_ylim(y_min, y_max)
        axes.axis("off")
        colours, legend, colourbar = np.asarray(colouring.colours), colouring.legend, colouring.colourbar
        numeric = colours.dtype.kind == "f"
        shown = axes.scatter(self.points[order, 0], self.points[order, 1], s=2, linewidths=0,
                             c=colours[order] if numeric else list(colours[order]),
                             **({"cmap": "viridis", "vmin": 0, "vmax": 1} if numeric else {}))
        if legend:
            handles = [plt.Line2D([], [], marker="o", linestyle="", color=colour, label=label)
                       for label, colour in legend.items()]
            axes.legend(handles=handles, loc="lower left", fontsize=7, framealpha=0.8, markerscale=0.8)
        if colourbar:
            inset = axes.inset_axes((0.55, 0.04, 0.4, 0.025))
            figure.colorbar(shown, cax=inset, orientation="horizontal").set_label(colourbar, fontsize=7)
            inset.tick_params(labelsize=6)
        return figure


@dataclass(frozen=True)
class Colouring:
    """Each point's colour: (N,) colour names, or (N,) numbers in [0, 1] drawn in viridis under a `colourbar` title;
    and the legend {label: colour}."""

    colours: np.ndarray
    legend: dict | None = None
    colourbar: str | None = None


# The page's choices of colouring; the last needs a second model.
COLOURINGS = ("true class", "predicted class", "right or wrong", "calibrated confidence", "where the models disagree")


def colouring(by: str, classes: list, labels: np.ndarray, predicted: np.ndarray, confidence: np.ndarray,
              other: np.ndarray | None = None, other_name: str = "") -> Colouring:
    """The colouring `by` (one of COLOURINGS) of the test images: true labels, this model's predictions and calibrated
    confidences, and (for the last) another model's predictions."""
    palette = np.array([matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab10").colors])
    if by in COLOURINGS[:2]:
        chosen = labels if by == COLOURINGS[0] else predicted
        return Colouring(palette[chosen], dict(zip(classes, palette)))
    if by == COLOURINGS[2]:
        right = predicted == labels
        return Colouring(np.where(right, GREY, RED), {f"right ({right.mean():.1%})": GREY,
                                                      f"wrong ({1 - right.mean():.1%})": RED})
    if by == COLOURINGS[3]:
        return Colouring(confidence.astype(np.float64), colourbar="calibrated confidence of the prediction")
    if by == COLOURINGS[4] and other is not None:
        differ = predicted != other
        return Colouring(np.where(differ, RED, GREY), {f"both say the same ({1 - differ.mean():.1%})": GREY,
                                                       f"{other_name} says otherwise ({differ.mean():.1%})": RED})
    raise ValueError(f"no colouring {by!r}" + (" without a second model" if by == COLOURINGS[4] else ""))
