"""Faithfulness beyond ROAD (cifar/engine/faithfulness.py): several metrics, because each rewards something different
and one alone can be gamed (Song et al. 2026 trace a bias toward blurry maps in ROAR and ROAD; a blob at the centre
of a CIFAR picture already scores well on ROAD). Each is computed as a well-known library computes it, so our numbers
can be checked against it (tests/test_metrics.py):

- Confidence change (Chattopadhay et al. 2018), as torch-cam's ClassificationMetric and pytorch-grad-cam's
  CamMultImageConfidenceChange: the picture multiplied by the map, so only what it highlights is left. Average drop:
  the share of the class's probability lost (lower is better); increase: whether the probability rose.
- Deletion and insertion (Petsiuk et al. 2018, RISE), as torch-cam's DeletionInsertionMetric: pixels removed (set
  black) or revealed, most relevant first, in STEPS steps; the area under the probability's curve. A faithful map
  makes deletion fall fast (low area) and insertion rise fast (high area).
- ARCC (pytorch-grad-cam's, arXiv 2605.14641): the harmonic mean of coherency (the method's map of the picture
  multiplied by its own map still looks like the map), 1 - complexity (the map's mean: a sparse map is simpler) and
  ROAD (doubled, clipped to [0, 1]). Higher is better.

All take float [0, 1] images (N, 3, H, W) on the CPU, maps (N, H, W) in [0, 1] and the target classes (N,); the
probability is the plain forward's softmax (no TTA), as ROAD's.
"""

from dataclasses import dataclass

import numpy as np
import torch

from cifar.engine.faithfulness import probabilities_of

STEPS = 20  # deletion and insertion's steps (torch-cam's default): 39 forward passes a map


@dataclass(frozen=True)
class ConfidenceChange:
    """The class's probability (N,) before and after the picture is multiplied by its map."""

    before: np.ndarray
    after: np.ndarray

    @property
    def drop(self) -> np.ndarray:
        """The share of the probability lost, 0 where it rose: torch-cam's per-image average drop."""
        return np.maximum(self.before - self.after, 0) / (self.before + 1e-7)

    @property
    def increase(self) -> np.ndarray:
        """1.0 where the probability rose, else 0.0."""
        return (self.after > self.before).astype(np.float32)


@torch.no_grad()
def confidence_change(model, images: torch.Tensor, cams: np.ndarray, targets) -> ConfidenceChange:
    device, targets = next(model.parameters()).device, torch.as_tensor(targets).view(-1)
    masked = images * torch.as_tensor(cams, dtype=images.dtype)[:, None]  # (N, 3, H, W)
    return ConfidenceChange(probabilities_of(model, images.to(device), targets).numpy(),
                            probabilities_of(model, masked.to(device), targets).numpy())


@dataclass(frozen=True)
class DeletionInsertion:
    """Per map (N,): the areas under the class's probability as pixels are deleted and as they are inserted, most
    relevant first, over the fraction of pixels changed (0 to 1)."""

    deletion: np.ndarray
    insertion: np.ndarray


@torch.no_grad()
def deletion_insertion(model, images: torch.Tensor, cams: np.ndarray, targets, steps: int = STEPS) -> DeletionInsertion:
    device, targets = next(model.parameters()).device, torch.as_tensor(targets).view(-1)
    count, positions = len(images), images.shape[-2] * images.shape[-1]
    step = -(-positions // steps)
    changed = torch.tensor([*range(0, positions, step), positions])  # pixels changed at each point: (K,)
    # Each pixel's rank, most relevant 0; ties in the order of the pixels (a stable sort, as torch-cam).
    order = torch.argsort(torch.as_tensor(cams).flatten(1), dim=1, descending=True, stable=True)
    ranks = torch.argsort(order, dim=1)  # (N, P)
    relevant = (ranks[:, None] < changed[None, :, None])[:, :, None]  # (N, K, 1, P): the first `changed` pixels
    pixels = images.flatten(2)[:, None]  # (N, 1, 3, P)
    # The curves' ends are known: deletion starts, and insertion ends, at the picture itself; deletion's last point
    # and insertion's first are the all-black picture, scored once.
    deleted = torch.where(relevant[:, 1:], 0.0, pixels)  # (N, K - 1, 3, P): points 1 .. K - 1
    inserted = torch.where(relevant[:, 1:-1], pixels, 0.0)  # (N, K - 2, 3, P): points 1 .. K - 2
    perturbed = torch.cat([deleted, inserted], 1).reshape(-1, *images.shape[1:])
    points = len(changed)
    scores = probabilities_of(model, perturbed.to(device), targets.repeat_interleave(2 * points - 3))
    scores = scores.view(count, 2 * points - 3)
    before = probabilities_of(model, images.to(device), targets)[:, None]  # (N, 1)
    deletion = torch.cat([before, scores[:, :points - 1]], 1)  # (N, K)
    insertion = torch.cat([scores[:, points - 2:points - 1], scores[:, points - 1:], before], 1)
    fractions = changed.float() / positions
    return DeletionInsertion(torch.trapezoid(deletion, fractions, dim=1).numpy(),
                             torch.trapezoid(insertion, fractions, dim=1).numpy())


def complexity(cams: np.ndarray) -> np.ndarray:
    """(N,) each map's mean (its L1 norm per pixel): 0 for an empty map, 1 for one that highlights everything."""
    return np.abs(cams).reshape(len(cams), -1).mean(1)


def coherency(cams: np.ndarray, cams_of_masked: np.ndarray) -> np.ndarray:
    """(N,) (Pearson correlation + 1) / 2 between each map and the method's map of the picture multiplied by it."""
    a, b = (x.reshape(len(x), -1).astype(np.float64) for x in (cams, cams_of_masked))
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    size = a.shape[1] - 1
    correlation = (a * b).sum(1) / size / (np.sqrt((a ** 2).sum(1) / size) * np.sqrt((b ** 2).sum(1) / size) + 1e-8)
    return (correlation + 1) / 2


def arcc(coherency_: np.ndarray, complexity_: np.ndarray, road_score: np.ndarray) -> np.ndarray:
    """(N,) the harmonic mean of coherency, 1 - complexity and ROAD doubled and clipped to [0, 1] (the reference's)."""
    road_part = np.clip(road_score * 2, 0, 1)
    return 3 / (1 / (coherency_ + 1e-8) + 1 / ((1 - complexity_) + 1e-8) + 1 / (road_part + 1e-8))
