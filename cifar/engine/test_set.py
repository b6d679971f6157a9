"""The whole test set, not only the mistakes: each test image with what the served model says of it, a selection by
true and predicted class, right or wrong and a confidence range, the heatmaps of a selection, where in the picture
they put their mass, and a selection exported as a ZIP. No UI in it (the page's tab is cifar/page/tabs/test_set.py).

What the model says of each image is read from the run's predictions.npz (its logits, plain and with its TTA) when
they are those of the TTA served, and computed once otherwise.
"""

import threading
from dataclasses import dataclass

import numpy as np

from cifar.engine.calibration import scaled_probabilities
from cifar.engine.explainer import DEFAULT_LAYER, DEFAULT_METHOD, Explainer
from cifar.engine.exports import export_zip
from cifar.engine.predict import predict_arrays
from cifar.dataset import TestSetError


# The central 16x16 pixels of a 32x32 map: a quarter of its area, so a map spread evenly puts 25% of its mass there.
CENTRE = (slice(8, 24), slice(8, 24))

UNIFORM_CENTRE_SHARE = 0.25

CORRECTNESS = ("all", "right", "wrong")



def centre_share(maps: np.ndarray) -> np.ndarray:
    """The share of each (..., 32, 32) map's mass in the CENTRE (0.25 for an even spread); NaN for an empty map."""
    total = maps.sum((-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, maps[..., CENTRE[0], CENTRE[1]].sum((-2, -1)) / total, np.nan)


def class_means(maps: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(classes, 32, 32): the mean of the maps of each class's images."""
    return np.stack([maps[labels == c].mean(0) for c in range(classes)])


@dataclass(frozen=True)
class Selection:
    """Test images chosen by TestSet.select: their indices (in test-set order) and how many matched in all."""

    indices: np.ndarray
    matching: int


class TestSet:
    """The test images with the served model's answer for each: predicted class and confidence (calibrated by
    `temperature` when there is one)."""

    __test__ = False  # a name pytest would otherwise take for a test class

    def __init__(self, images, labels, classes: list, explainer: Explainer, tta: str, stored_logits=None,
                 temperature: float | None = None):
        self.images, self.labels, self.classes = images, labels, classes
        self.explainer, self.tta, self.temperature = explainer, tta, temperature
        if stored_logits is not None and len(stored_logits) != len(labels):
            raise TestSetError(f"the run's stored predictions cover {len(stored_logits)} test images, the test set "
                             f"has {len(labels)}: not the test set the run was evaluated on")
        self._logits, self._lock = stored_logits, threading.Lock()

    @property
    def logits(self) -> np.ndarray:
        """(N, classes) the served model's logits (its TTA's mean): as stored with the run, or computed once."""
        with self._lock:
            if self._logits is None:
                self._logits = predict_arrays(self.explainer.model, self.images, self.tta).mean(0)
            return self._logits

    @property
    def predicted(self) -> np.ndarray:
        return self.logits.argmax(1)

    @property
    def confidence(self) -> np.ndarray:
        """(N,) the probability of each image's predicted class, as the page shows it (calibrated when it can be)."""
        return scaled_probabilities(self.logits, self.temperature or 1.0).max(1).astype(np.float32)

    def select(self, true_class: int | None = None, predicted_class: int | None = None, correctness: str = "all",
               confidence: tuple = (0.0, 1.0), count: int | None = None) -> Selection:
        """The test images (test-set order) of that true and predicted class (None: any), right, wrong or either,
        whose confidence lies in [low, high]: the first `count` of them, and how many matched."""
        predicted, confidences = self.predicted, self.confidence
        keep = (confidences >= confidence[0]) & (confidences <= confidence[1])
        if true_class is not None:
            keep &= self.labels == true_class
        if predicted_class is not None:
            keep &= predicted == predicted_class
        if correctness != "all":
            keep &= (predicted == self.labels) == (correctness == "right")
        matching = np.flatnonzero(keep)
        return Selection(matching[:count], len(matching))

    def classes_of(self, indices: np.ndarray, side: str = "predicted") -> np.ndarray:
        """The class each of those test images' heatmap explains: the one predicted, or the true one."""
        return (self.predicted if side == "predicted" else self.labels)[indices]

    def heatmaps(self, indices: np.ndarray, method: str = DEFAULT_METHOD, layer: str = DEFAULT_LAYER,
                 side: str = "predicted") -> np.ndarray:
        """(N, 32, 32) the heatmaps of those test images at `layer`, for their predicted or their true class."""
        return self.explainer.heatmaps(self.images[indices], (layer,), method, self.classes_of(indices, side))[0][:, 0]

    def road(self, indices: np.ndarray, maps: np.ndarray, side: str = "predicted") -> np.ndarray:
        """(N,) the ROAD score of each map (heatmaps' order) for the class it explains."""
        return self.explainer.road(self.images[indices], maps[:, None], self.classes_of(indices, side)).score[:, 0]

    def rows(self, indices: np.ndarray, road: np.ndarray | None = None) -> list[dict]:
        """The export's CSV rows: index, true class, prediction, calibrated confidence and, when given, ROAD."""
        predicted, confidence = self.predicted, self.confidence
        rows = [{"index": int(i), "true": self.classes[self.labels[i]], "predicted": self.classes[predicted[i]],
                 "confidence": round(float(confidence[i]), 6)} for i in indices]
        for row, score in zip(rows, road if road is not None else []):
            row["road"] = round(float(score), 6)
        return rows

    def export(self, indices: np.ndarray, maps: np.ndarray, road: np.ndarray, manifest: dict) -> bytes:
        """A ZIP of the chosen images (cifar/engine/exports.py), each named by its test-set index: images/INDEX.png,
        heatmaps/INDEX.png and .npy, index.csv (index, true class, prediction, calibrated confidence, ROAD)."""
        return export_zip([f"{i:05d}" for i in indices], self.images[indices], maps, self.rows(indices, road), manifest)
