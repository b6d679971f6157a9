"""How faithful a heatmap is to the model: ROAD (Rong et al. 2022, "A Consistent and Efficient Evaluation
Strategy for Attribution Methods"), computed as pytorch-grad-cam's `ROADCombined` computes it.

Remove the pixels a heatmap calls most relevant and the class's probability should fall; remove the least
relevant and it should hold. Removed pixels are filled in from their neighbours with a little noise (noisy
linear imputation), so the model sees a plausible image rather than the shape of a hole. The score is
(drop when the most relevant go - drop when the least relevant go) / 2, averaged over the percentiles: in
[-0.5, 0.5], higher is more faithful, and a random heatmap scores about 0.

Like the reference, "MoRF at percentile p" keeps the pixels whose heatmap value is below the p-th
percentile (it removes the top 100 - p %), "LeRF at p" does the same with the inverted heatmap.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from cifar.engine.predict import image_tensor

# pytorch-grad-cam's ROAD tutorial uses these four: 8 masked forward passes per heatmap (the default nine
# would be 18, for about the same ranking of methods).
PERCENTILES = (20, 40, 60, 80)
NOISE = 0.01  # the imputer's noise, absolute, in [0, 1] pixel units (the reference's)
SEED = 0  # each heatmap's noise is drawn from this seed: the same heatmap always gets the same score
# The imputer's stencil: a missing pixel is the weighted mean of its 8 neighbours ((row, column) offsets).
NEIGHBOURS = (((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
              ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6))


def impute(image: torch.Tensor, keep: np.ndarray, generator: torch.Generator, noise: float = NOISE) -> torch.Tensor:
    """(3, H, W) image with the pixels where `keep` (H, W) is False replaced by the solution of: each missing
    pixel equals the weighted mean of its neighbours inside the image (known or missing), plus noise."""
    height, width = keep.shape
    pixels = image.reshape(image.shape[0], -1).numpy().astype(np.float64)  # (3, H*W)
    missing = np.flatnonzero(~keep.ravel())  # in row-major order, as the reference draws its noise
    unknown_index = np.full(height * width, -1)
    unknown_index[missing] = np.arange(len(missing))
    rows, columns = missing // width, missing % width
    diagonal = np.zeros(len(missing))
    entries, right_side = [], np.zeros((len(missing), image.shape[0]))
    for (dy, dx), weight in NEIGHBOURS:
        inside = (rows + dy >= 0) & (rows + dy < height) & (columns + dx >= 0) & (columns + dx < width)
        equation = np.flatnonzero(inside)
        neighbour = (rows[inside] + dy) * width + columns[inside] + dx
        diagonal[equation] -= weight
        known = keep.ravel()[neighbour]
        right_side[equation[known]] -= weight * pixels[:, neighbour[known]].T
        entries.append((equation[~known], unknown_index[neighbour[~known]], weight))
    equations = np.concatenate([e for e, _, _ in entries] + [np.arange(len(missing))])
    unknowns = np.concatenate([u for _, u, _ in entries] + [np.arange(len(missing))])
    values = np.concatenate([np.full(len(e), w) for e, _, w in entries] + [diagonal])
    system = scipy.sparse.csc_matrix((values, (equations, unknowns)), shape=(len(missing),) * 2)
    solution = torch.tensor(scipy.sparse.linalg.spsolve(system, right_side), dtype=torch.float).reshape(len(missing), -1)
    filled = image.reshape(image.shape[0], -1).clone()
    filled[:, missing] = solution.t() + noise * torch.randn(solution.t().shape, generator=generator)
    return filled.reshape_as(image)


def kept_pixels(cam: np.ndarray, percentile: float, most_relevant_first: bool) -> np.ndarray:
    """(H, W) bool: the pixels left in place when the rest are removed, most or least relevant first."""
    values = cam if most_relevant_first else np.float32(1) - cam
    # float32 threshold: the reference compares a float32 tensor with it, in float32
    return values < np.float32(np.percentile(values, percentile))


@dataclass(frozen=True)
class Road:
    """Per heatmap (arrays of N): the mean drop of the target class's probability when the most relevant
    pixels are removed, when the least relevant are, and the combined score (lerf_drop - morf_drop) / 2 with
    the drops counted negative, as the reference does."""

    most_relevant_first: np.ndarray
    least_relevant_first: np.ndarray

    @property
    def score(self) -> np.ndarray:
        return (self.most_relevant_first - self.least_relevant_first) / 2


@torch.no_grad()
def road(model, images: torch.Tensor, cams: np.ndarray, targets, percentiles=PERCENTILES, seed: int = SEED) -> Road:
    """ROAD of heatmaps `cams` (N, H, W) in [0, 1] for float [0, 1] `images` (N, 3, H, W) and target classes
    (N,); the model's raw forward (no TTA), probabilities as `ClassifierOutputSoftmaxTarget`."""
    model.eval()
    device = next(model.parameters()).device
    images, targets = images.cpu(), torch.as_tensor(targets).view(-1)
    # One noise stream per image, drawn in the reference's order for one image (least relevant first, then
    # most; percentiles in order): a heatmap's score does not depend on the others in the batch.
    generators = [torch.Generator().manual_seed(seed) for _ in images]
    perturbed = torch.stack([impute(image, kept_pixels(cam, percentile, most_relevant_first), generator)
                             for image, cam, generator in zip(images, cams, generators)
                             for most_relevant_first in (False, True) for percentile in percentiles])  # (N * 2 * P, 3, H, W)
    before = probabilities_of(model, images.to(device), targets)  # (N,)
    after = probabilities_of(model, perturbed.to(device), targets.repeat_interleave(2 * len(percentiles)))
    drops = (before[:, None, None] - after.view(len(images), 2, len(percentiles))).mean(2)  # (N, sides)
    return Road(most_relevant_first=drops[:, 1].numpy(), least_relevant_first=drops[:, 0].numpy())


def probabilities_of(model, images: torch.Tensor, targets: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N,) float32 CPU: the softmax probability of each image's target class."""
    logits = torch.cat([model(batch) for batch in images.split(batch_size)])
    return logits.softmax(1).cpu().gather(1, targets.view(-1, 1))[:, 0]


# -- A person's test of a heatmap: the same covering, on one picture -------------------------------------------------
def covered(image: np.ndarray, cover: np.ndarray, seed: int = SEED) -> np.ndarray:
    """The uint8 (H, W, 3) picture with the pixels where `cover` (H, W) is True removed as ROAD removes them: each
    filled in from its neighbours, with ROAD's noise. Raises ValueError when everything or nothing is covered (the
    filling needs pixels left to fill from; nothing covered is no test)."""
    if cover.all() or not cover.any():
        raise ValueError("cover part of the picture, not " + ("all of it: the covering fills pixels in from those "
                                                              "left" if cover.all() else "none of it"))
    filled = impute(image_tensor(image)[0], ~cover, torch.Generator().manual_seed(seed))
    return (filled.clamp(0, 1) * 255).round().byte().numpy().transpose(1, 2, 0)


def heatmap_cover(cam: np.ndarray, percent: float, most_relevant: bool) -> np.ndarray:
    """(H, W) bool: the top `percent`% of the heatmap (most_relevant), or everything but it, as ROAD's MoRF and LeRF
    choose them."""
    if most_relevant:
        return ~kept_pixels(cam, 100 - percent, most_relevant_first=True)
    return ~kept_pixels(cam, percent, most_relevant_first=False)
