"""The explanation engine: for one model, the heatmaps of any CAM method at any of its layers, their ROAD
faithfulness scores, and the misclassified gallery's maps. No UI in it: the page (cifar/page/tabs/), the faithfulness
table (cifar/measure/faithfulness_table.py) and a finished run (cifar/training/finish.py) all explain through it, so
what the page shows and what the table averages are the same numbers by construction.

Images come in as uint8 (N, 32, 32, 3) arrays, what the model is shown; this is the one place they become tensors.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

import torch

from cifar.engine import metrics
from cifar.engine.cam import METHODS, CentreCAM, RandomCAM, SobelCAM, blurred
from cifar.engine.faithfulness import Road, road
from cifar.engine.predict import image_tensor, probabilities

# The layers the app offers: each stage's output, and the original project's layer.
STAGE_LAYERS = ("layer1", "layer2", "layer3", "layer4")
ORIGINAL_LAYER = "layer4.1.conv2"
LAYERS = STAGE_LAYERS + (ORIGINAL_LAYER,)
# The last block's output, as pytorch-grad-cam recommends for ResNets. Not the original project's conv:
# its output is taken before BatchNorm subtracts each channel's mean, and that offset can make the weighted
# sum negative everywhere, a blank heatmap (the final model: 7 of the 10 example images).
DEFAULT_LAYER = "layer4"
DEFAULT_METHOD = "Grad-CAM"  # the original project's method
# Methods of hundreds of forward passes a map (BENCHMARKS.md has their times); the page asks for
# their chosen layer's map alone, so it is not kept waiting for the strip's. And methods whose map ignores the class.
COSTLY_METHODS = tuple(name for name, method in METHODS.items() if method.costly)
CLASS_AGNOSTIC = {name: method.ignores_class for name, method in METHODS.items() if method.ignores_class}
LAYER_AGNOSTIC = {name: method.ignores_layer for name, method in METHODS.items() if method.ignores_layer}
# Not methods: maps that ignore what the model learned, which every method is measured against. Uniform random maps at
# the layer's resolution (the chance level); the image's edges; a blob at its centre (where CIFAR puts the object).
RANDOM, SOBEL, CENTRE = "Random", "Sobel edges", "Centre blob"
BASELINES = {RANDOM: RandomCAM, SOBEL: SobelCAM, CENTRE: CentreCAM}
IMAGE_ONLY = (SOBEL, CENTRE)  # made from the image alone: the same maps, and scores, at every layer
BLURRED = " (blurred)"  # "Grad-CAM (blurred)": the method's own maps, blurred (cam/baselines.py): a control per method
# The faithfulness metrics, each (N, layers) from Explainer.metrics; the sentence says what it rewards (the page and the
# table print it); "higher" says which way is better.
METRICS = {
    "ROAD": ("removing what the map points at (filled in from the neighbours) costs the class more than removing the "
             "rest", True),
    "ARCC": ("all three at once: ROAD, a sparse map, and a map that stays the same when the picture keeps only what "
             "it points at", True),
    "Average drop": ("keeping only what the map points at (the rest darkened by the map) loses little of the class's "
                     "probability; lower is better", False),
    "Increase": ("keeping only what the map points at raises the class's probability (the share of pictures where it "
                 "does)", True),
    "Deletion": ("blacking out pixels, most relevant first, makes the probability fall fast (area under the curve; "
                 "lower is better)", False),
    "Insertion": ("revealing pixels on black, most relevant first, makes the probability rise fast (area under the "
                  "curve)", True),
}


def method_class(name: str) -> type:
    """The CAM class of a method, a baseline or a method's blurred control ("Grad-CAM (blurred)")."""
    if name.endswith(BLURRED):
        return blurred(METHODS[name.removesuffix(BLURRED)])
    return {**METHODS, **BASELINES}[name]

# What the misclassified gallery shows of each mistake: the default method at the default layer, for the class the
# model predicted and for the true class.
GALLERY_METHOD, GALLERY_LAYER = DEFAULT_METHOD, DEFAULT_LAYER
MISTAKE_SIDES = ("predicted", "true")

BATCH = 50  # images per CAM call: one ROAD call masks 8x as many
REMEMBERED = 512  # one image's maps or scores at one layer each: what the page's next requests reuse


def heatmap_key(side: str) -> str:
    """The misclassified.npz array of the gallery's maps for the `side` class."""
    return f"heatmap_{side}"


@dataclass(frozen=True)
class Explanation:
    """One image's heatmaps: {layer: (32, 32) float32 in [0, 1]}, and the class they explain (the predicted one when
    none was asked for; the target, for a contrast of two classes)."""

    maps: dict
    explained_class: int


class Explainer:
    """A model's explanations. Safe to share between the page's concurrent requests (the CAM methods are; what is
    remembered is behind a lock)."""

    def __init__(self, model, remembered: int = REMEMBERED):
        self.model = model.eval()
        self.remembered = remembered
        self._recent, self._recent_lock = OrderedDict(), threading.Lock()

    # -- Many images: the faithfulness table, the gallery, a finished run ------------------------------
    def heatmaps(self, images: np.ndarray, layers, method: str = DEFAULT_METHOD, targets=None, contrasts=None):
        """(maps (N, layers, 32, 32) float32 in [0, 1], explained classes (N,) int64) for uint8 images (N, 32, 32, 3),
        BATCH at a time. targets, contrasts: None, a class, or one per image (see BaseCAM.__call__). `method` may
        be a baseline (RANDOM: one seeded stream over all the images, the same maps every time)."""
        cam = method_class(method)(self.model, layers)
        targets, contrasts = (None if c is None else np.broadcast_to(np.asarray(c), len(images))
                              for c in (targets, contrasts))
        maps, classes = [np.zeros((0, len(cam.target_layers), *images.shape[1:3]), np.float32)], [np.zeros(0, np.int64)]
        for start in range(0, len(images), BATCH):
            part = slice(start, start + BATCH)
            cams, logits = cam(image_tensor(images[part]),
                               *(None if c is None else c[part].tolist() for c in (targets, contrasts)))
            maps.append(cams)
            classes.append(logits.argmax(1).cpu().numpy() if targets is None else targets[part])
        return np.concatenate(maps), np.concatenate(classes).astype(np.int64)

    def road(self, images: np.ndarray, maps: np.ndarray, classes) -> Road:
        """ROAD of maps (N, layers, 32, 32) of uint8 images (N, 32, 32, 3) for classes (N,): each field (N, layers)."""
        classes = np.broadcast_to(np.asarray(classes), len(images))
        most, least = np.zeros(maps.shape[:2], np.float32), np.zeros(maps.shape[:2], np.float32)
        for start in range(0, len(images), BATCH):
            part = slice(start, start + BATCH)
            batch = image_tensor(images[part])
            for i in range(maps.shape[1]):
                scores = road(self.model, batch, maps[part, i], classes[part].tolist())
                most[part, i], least[part, i] = scores.most_relevant_first, scores.least_relevant_first
        return Road(most, least)

    def metrics(self, images: np.ndarray, maps: np.ndarray, classes, method: str, layers, steps: int = metrics.STEPS,
                road_score: np.ndarray | None = None, coherency: bool = True) -> dict:
        """{metric of METRICS: (N, layers)} for `method`'s maps (N, layers, 32, 32) of uint8 images for classes (N,),
        BATCH images at a time. road_score (N, layers): ROAD already computed (the page's), else computed here.
        ARCC's coherency runs the method again on each picture multiplied by its map; without it ARCC is NaN."""
        classes = np.broadcast_to(np.asarray(classes), len(images))
        found = {name: np.zeros(maps.shape[:2], np.float32) for name in METRICS}
        found["ROAD"] = self.road(images, maps, classes).score if road_score is None else np.asarray(road_score)
        for start in range(0, len(images), BATCH):
            part = slice(start, start + BATCH)
            batch, targets = image_tensor(images[part]), torch.tensor(classes[part])
            for i, layer in enumerate(layers):
                cams = maps[part, i]
                change = metrics.confidence_change(self.model, batch, cams, targets)
                curves = metrics.deletion_insertion(self.model, batch, cams, targets, steps)
                found["ARCC"][part, i] = (self._arcc(batch, cams, targets, method, layer, found["ROAD"][part, i])
                                          if coherency else np.nan)
                found["Average drop"][part, i], found["Increase"][part, i] = change.drop, change.increase
                found["Deletion"][part, i], found["Insertion"][part, i] = curves.deletion, curves.insertion
        return found

    def _arcc(self, batch, cams, targets, method, layer, road_score) -> np.ndarray:
        # Random maps are drawn afresh (seed 1), not the same seeded maps again: they share nothing.
        again = method_class(method)(self.model, (layer,), **({"seed": 1} if method == RANDOM else {}))(
            batch * torch.as_tensor(cams)[:, None], targets.tolist())[0][:, 0]
        return metrics.arcc(metrics.coherency(cams, again), metrics.complexity(cams), road_score)

    def scored(self, images: np.ndarray, layers, method: str = DEFAULT_METHOD, targets=None):
        """The pipeline the table runs: heatmaps, then their ROAD scores. (maps, classes, scores (N, layers))."""
        maps, classes = self.heatmaps(images, layers, method, targets)
        return maps, classes, self.road(images, maps, classes).score

    # -- One image, remembered: the page ---------------------------------------------------------------
    def explain(self, image: np.ndarray, layers, method: str = DEFAULT_METHOD, target: int | None = None,
                contrast: int | None = None) -> Explanation:
        """One uint8 (32, 32, 3) image's maps at `layers`. Remembered per layer: the page's next request for the same
        image, method and classes (another layer, an opacity, the score) computes only what it lacks, in one call."""
        def compute(missing):
            maps, classes = self.heatmaps(image[None], missing, method, target, contrast)
            return [(heatmap, int(classes[0])) for heatmap in maps[0]]

        known = self._per_layer(("maps", image.tobytes(), method, target, contrast), layers, compute)
        return Explanation({layer: heatmap for layer, (heatmap, _) in known.items()}, known[layers[0]][1])

    def faithfulness(self, image: np.ndarray, layers, method: str = DEFAULT_METHOD, target: int | None = None,
                     contrast: int | None = None) -> Road:
        """ROAD of explain(...)'s maps at `layers`, for the class they explain: each field (layers,). Remembered."""
        def compute(missing):
            explanation = self.explain(image, missing, method, target, contrast)
            maps = np.stack([explanation.maps[layer] for layer in missing])[None]  # (1, missing, 32, 32)
            scores = self.road(image[None], maps, [explanation.explained_class])
            return list(zip(scores.most_relevant_first[0], scores.least_relevant_first[0]))

        known = self._per_layer(("road", image.tobytes(), method, target, contrast), layers, compute)
        return Road(*(np.array([known[layer][side] for layer in layers]) for side in (0, 1)))

    def heatmap_metrics(self, image: np.ndarray, layer: str, method: str = DEFAULT_METHOD, target: int | None = None,
                        contrast: int | None = None) -> dict:
        """{metric of METRICS: value} for explain(...)'s map at `layer` (ROAD: faithfulness(...)'s). ARCC is None for a
        costly method: its coherency would run the method again. Remembered."""
        def compute(missing):
            explanation = self.explain(image, missing, method, target, contrast)
            road_score = self.faithfulness(image, missing, method, target, contrast).score[None]  # (1, layers)
            maps = np.stack([explanation.maps[name] for name in missing])[None]
            found = self.metrics(image[None], maps, [explanation.explained_class], method, missing,
                                 road_score=road_score, coherency=method not in COSTLY_METHODS)
            return [{name: None if np.isnan(values[0, i]) else float(values[0, i]) for name, values in found.items()}
                    for i in range(len(missing))]

        return self._per_layer(("metrics", image.tobytes(), method, target, contrast), (layer,), compute)[layer]

    def probabilities(self, image: np.ndarray, tta: str = "none", temperature: float = 1.0) -> np.ndarray:
        """(classes,) the model's probabilities for one uint8 image: the TTA views' mean logits / temperature."""
        return probabilities(self.model, image, tta, temperature)

    def _per_layer(self, key: tuple, layers, compute) -> dict:
        """{layer: answer}, each remembered under (*key, layer); compute(missing layers) -> their answers, in order,
        is called once for those not remembered."""
        with self._recent_lock:
            known = {layer: self._recent.get((*key, layer)) for layer in layers}
        missing = [layer for layer, answer in known.items() if answer is None]
        if missing:
            known.update(zip(missing, compute(missing)))
        with self._recent_lock:
            for layer in layers:
                self._recent[(*key, layer)] = known[layer]
                self._recent.move_to_end((*key, layer))
            while len(self._recent) > self.remembered:
                self._recent.popitem(last=False)
        return known

    # -- The misclassified gallery ----------------------------------------------------------------------
    def mistake_heatmaps(self, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """(N, 32, 32) float16: the gallery's map of each image for its class in `classes`. Stored with a run's
        mistakes (float16, 0.6 MB a side for ~500 of them), because drawing 100 is then instant where computing
        them takes about a second of a 2-core CPU (BENCHMARKS.md)."""
        return self.heatmaps(images, (GALLERY_LAYER,), GALLERY_METHOD, classes)[0][:, 0].astype(np.float16)

    def gallery_maps(self, misclassified: dict, side: str, chosen=slice(None)) -> np.ndarray:
        """(N, 32, 32) float32: the gallery's maps of the chosen mistakes for their `side` class: as stored with the
        run, or, for a run written before they were, computed the same way."""
        if heatmap_key(side) in misclassified:
            return misclassified[heatmap_key(side)][chosen].astype(np.float32)
        return self.mistake_heatmaps(misclassified["images"][chosen], misclassified[side][chosen]).astype(np.float32)

    def gallery_scores(self, misclassified: dict, side: str, chosen=slice(None), stored: dict | None = None):
        """(maps, ROAD scores) of the chosen mistakes for their `side` class. `stored`: the faithfulness table's
        "misclassified" entry, whose scores are these maps' (the same numbers, not computed again) when it covers
        every mistake."""
        maps = self.gallery_maps(misclassified, side, chosen)
        if stored and len(stored[side]) == len(misclassified[side]):
            return maps, np.asarray(stored[side])[chosen]
        return maps, self.road(misclassified["images"][chosen], maps[:, None], misclassified[side][chosen]).score[:, 0]
