"""What the page answers: each function takes what a user gives (an upload, a layer, a class), checks it, and
returns pictures and text. Each is also a named API endpoint; cifar/demo.py lays them out on the page.

A request only runs the model on its own image (or the run's stored misclassified images): the model, the
curves, the misclassified set and the faithfulness table are read once, at start-up.
"""

import hashlib
import io
import itertools
import os
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
import torch

from .device import model_device
from .evaluate import check_tta
from .faithfulness import road
from .faithfulness_table import RANDOM, summary
from .gradcam import DEFAULT_LAYER, LAYERS, METHODS, STAGE_LAYERS, overlay
from .inference import BadImage, enlarge, image_tensor, load_image, prepare, probabilities
from .run_folder import MISTAKE_SIDES, Run, gallery_heatmaps
from .files import atomic_write

PREDICTED = "predicted class"
RUNNER_UP = "runner-up"
ALL = "all"
MAX_GALLERY = 100
# Methods whose map does not depend on the class asked for, and why (the caption says so).
CLASS_AGNOSTIC = {"Eigen-CAM": "the main pattern of the layer's activations, no gradients"}
# What each method costs and means, shown under the method choice.
METHOD_COSTS = ("Each is one forward and one backward pass for all layers (a few ms), except Score-CAM: one forward "
                "pass per channel (512 at layer4), about 5 s at layer4 and 12 s with the strip below on a 2-core CPU. "
                "Eigen-CAM needs no backward pass, and shows the same map for every class.")
REMEMBERED = 64  # answers kept (heatmaps, scores), so the requests that follow one on the page reuse it


IMAGE_DIR = Path(tempfile.gettempdir()) / "cifar-demo"
CACHE_SECONDS = 3600  # our images and Gradio's cached copies live an hour
JPEG_QUALITY = 95  # with no chroma subsampling: no visible loss on a heatmap
_image_counter = itertools.count(1)


def image_file(image: np.ndarray, exact: bool = False) -> str:
    """The image as a file named by its content, written atomically: PNG when `exact` (a 32x32 picture enlarged,
    flat blocks that PNG stores small and exactly), else JPEG (a heatmap overlay: smooth, and as JPEG ~40x faster
    to encode and ~7x smaller to send than PNG, which matters on a share link; BENCHMARKS.md).

    Returning arrays lets Gradio write them to its cache with a plain write_bytes on a content-hashed
    path: two users getting the same picture at once could have one rewrite the file while the other
    downloads it (seen as "peer closed connection" under load). A file path goes through Gradio's
    atomic copy instead.
    """
    buffer = io.BytesIO()
    if exact:
        PIL.Image.fromarray(image).save(buffer, format="PNG")
    else:
        PIL.Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    data = buffer.getvalue()
    path = IMAGE_DIR / f"{hashlib.sha256(data).hexdigest()[:32]}.{'png' if exact else 'jpg'}"
    try:
        os.utime(path)  # handed out again: keep it out of the next prune
    except FileNotFoundError:
        IMAGE_DIR.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    if next(_image_counter) % 1000 == 0:
        prune(IMAGE_DIR, CACHE_SECONDS)
    return str(path)


def prune(folder: Path, max_age: float) -> None:
    """Delete files older than max_age seconds: a public demo must not fill the disk."""
    cutoff = time.time() - max_age
    for old in folder.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except FileNotFoundError:  # another request pruned it first
            pass


def model_input(image) -> tuple[np.ndarray, np.ndarray]:
    try:
        return prepare(load_image(image))
    except BadImage as error:
        raise gr.Error(str(error)) from None


def copies(small: np.ndarray, count: int) -> torch.Tensor:
    """(count, 3, 32, 32): one image as the input of `count` heatmaps' ROAD scores."""
    return image_tensor(np.repeat(small[None], count, 0))


def explained_layers(layer: str) -> tuple:
    """The layers one explanation computes: the strip's four stages, and the chosen layer when it is not one of
    them. The same for every stage, so moving between stages reuses the remembered maps."""
    return STAGE_LAYERS if layer in STAGE_LAYERS else (*STAGE_LAYERS, layer)


class Demo:
    """The handlers, bound to one loaded run."""

    def __init__(self, run: Run, tta: str | None = None):
        self.run = run
        self.model = run.model.eval()
        self.classes = run.classes
        # The run's own TTA unless the deployer trades it for latency (app.py --tta): each view is a
        # forward pass, ~6 ms of the 2-core CPU (BENCHMARKS.md).
        self.tta = tta or run.metrics["tta"]
        check_tta(self.tta)  # at start-up, not at the first request
        self._recent, self._recent_lock = OrderedDict(), threading.Lock()

    @property
    def test_accuracy(self) -> float:
        """The test accuracy of what is served: the run's TTA, or plain (the lower figure) for another."""
        metrics = self.run.metrics
        return metrics["test_accuracy_tta"] if self.tta == metrics["tta"] else metrics["test_accuracy"]

    # -- Checks and shared work ---------------------------------------------------------------
    def _check(self, layer=DEFAULT_LAYER, method="Grad-CAM", target=PREDICTED, opacity=0.5) -> int | None:
        """Refuses what the page cannot offer; returns the class index asked for (None: the predicted class)."""
        if layer not in LAYERS:
            raise gr.Error(f"Unknown layer {layer!r}: choose one of {', '.join(LAYERS)}.")
        if method not in METHODS:
            raise gr.Error(f"Unknown method {method!r}: choose one of {', '.join(METHODS)}.")
        if target != PREDICTED and target not in self.classes:
            raise gr.Error(f"Unknown class {target!r}: choose '{PREDICTED}' or one of {', '.join(self.classes)}.")
        if not 0 <= opacity <= 1:
            raise gr.Error(f"opacity must be between 0 and 1, got {opacity}.")
        return None if target == PREDICTED else self.classes.index(target)

    def _remembered(self, key, compute):
        """compute(), or its answer from one of the last REMEMBERED requests with the same key."""
        with self._recent_lock:
            if key in self._recent:
                self._recent.move_to_end(key)
                return self._recent[key]
        answer = compute()
        with self._recent_lock:
            self._recent[key] = answer
            while len(self._recent) > REMEMBERED:
                self._recent.popitem(last=False)
        return answer

    def _maps(self, small, layers: tuple, method: str, target_class=None, contrast_class=None):
        """({layer: heatmap}, the class explained) for one 32x32 image. Remembered: the page's score request after
        a heatmap, or a change of layer or opacity, does not run the model again."""
        def compute():
            cams, logits = METHODS[method](self.model, layers)(image_tensor(small), target_class, contrast_class)
            return dict(zip(layers, cams[0])), int(logits.argmax()) if target_class is None else target_class

        return self._remembered((small.tobytes(), layers, method, target_class, contrast_class), compute)

    def _road(self, images: torch.Tensor, maps: list, classes: list) -> np.ndarray:
        return road(self.model, images, np.stack(maps), classes).score

    # -- Predict & explain ------------------------------------------------------------------
    def predict(self, image, top_k: float = 3):
        """Top-k class probabilities, and the 32x32 image the model actually saw (enlarged)."""
        return self._predict(model_input(image), top_k)

    def explain(self, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED,
                method: str = "Grad-CAM", opacity: float = 0.5):
        """The heatmap of `method` at `layer` for class `target`, and a strip across the four stages."""
        return self._explain(model_input(image), layer, target, method, opacity)

    def analyze(self, image, top_k, layer, target, method, opacity):
        """predict + explain in one request, the upload decoded once: what the page runs on an upload
        or an example click."""
        prepared = model_input(image)
        return *self._predict(prepared, top_k), *self._explain(prepared, layer, target, method, opacity)

    def refresh_explanation(self, image, layer, target, method, opacity):
        """explain, for the page's controls: with no image yet there is nothing to redo."""
        return (None, [], "") if image is None else self.explain(image, layer, target, method, opacity)

    def refresh_heatmap(self, image, layer, target, method, opacity):
        """refresh_explanation for a change of layer: the strip of the four stages stays as it is, so the page is sent
        (and fetches) one picture instead of five."""
        heatmap, _, caption = self.refresh_explanation(image, layer, target, method, opacity)
        return heatmap, caption

    def _predict(self, prepared, top_k):
        top_k = int(top_k)
        if not 1 <= top_k <= len(self.classes):
            raise gr.Error(f"top_k must be between 1 and {len(self.classes)}, got {top_k}.")
        small, _ = prepared
        probs = probabilities(self.model, small, self.tta)
        best = np.argsort(-probs)[:top_k]
        return {self.classes[i]: float(probs[i]) for i in best}, image_file(enlarge(small), exact=True)

    def _explain(self, prepared, layer, target, method, opacity):
        target_class = self._check(layer, method, target, opacity)
        small, display = prepared
        maps, shown = self._maps(small, explained_layers(layer), method, target_class)
        heatmap = image_file(overlay(display, maps[layer], opacity))
        strip = [(image_file(overlay(display, maps[stage], opacity)), stage) for stage in STAGE_LAYERS]
        if method in CLASS_AGNOSTIC:
            caption = f"{method} at `{layer}` (the same map for every class: {CLASS_AGNOSTIC[method]})"
        else:
            caption = f"{method} for **{self.classes[shown]}** at `{layer}`"
        if not maps[layer].any():
            caption += (": nothing here counts for this class (the weighted activations are negative everywhere); "
                        "the stage outputs below show where the evidence is")
        return heatmap, strip, caption

    # -- How faithful ---------------------------------------------------------------------------
    def faithfulness(self, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED, method: str = "Grad-CAM"):
        """The ROAD score of the heatmap /explain shows and of the four in its strip: a sentence for people,
        and {layer: score} for programs. On the page it arrives after the heatmap, which does not wait for it."""
        target_class = self._check(layer, method, target)
        small, _ = model_input(image)
        layers = explained_layers(layer)
        maps, shown = self._maps(small, layers, method, target_class)
        result = self._remembered(("road", small.tobytes(), layers, method, target_class), lambda: road(
            self.model, copies(small, len(layers)), np.stack([maps[name] for name in layers]), [shown] * len(layers)))
        scores = {name: float(result.score[layers.index(name)]) for name in (layer, *STAGE_LAYERS)}
        chosen, name = layers.index(layer), self.classes[shown]
        text = (f"**Faithfulness (ROAD): {scores[layer]:+.2f}**: removing the pixels this heatmap marks most relevant "
                f"lowers P({name}) by {result.most_relevant_first[chosen]:.2f} on average, removing the least relevant "
                f"by {result.least_relevant_first[chosen]:.2f}. Higher is more faithful; random maps score about 0.")
        text += self._table_line(method, layer)
        text += "\n\nStrip: " + " · ".join(f"`{stage}` {scores[stage]:+.2f}" for stage in STAGE_LAYERS)
        return text, scores

    def refresh_faithfulness(self, image, layer, target, method):
        """faithfulness, for the page's controls: with no image yet there is nothing to score."""
        return ("", {}) if image is None else self.faithfulness(image, layer, target, method)

    def _table_line(self, method, layer) -> str:
        """How this method and layer do on average, from the run's faithfulness table, when it has the row."""
        table = self.run.faithfulness
        if not table or layer not in table["scores"].get(method, {}):
            return ""
        rows = summary(table)
        mean, error, better = rows[method][layer]
        verdict = "" if better else " (no better than chance)"
        return (f" Over {len(table['test_indices'])} test images, {method} at `{layer}` averages {mean:+.3f} ± "
                f"{error:.3f}{verdict}; random maps {rows[RANDOM][layer][0]:+.3f}.")

    # -- Contrast and comparison ----------------------------------------------------------------
    def contrast(self, image, other: str = RUNNER_UP, layer: str = DEFAULT_LAYER, method: str = "Grad-CAM",
                 opacity: float = 0.5):
        """Why the predicted class and not `other` (default: the runner-up): the heatmap for each, and the map of
        what makes the model prefer the first (its logit minus the other's), each with its ROAD score."""
        self._check(layer, method, PREDICTED, opacity)
        if method in CLASS_AGNOSTIC:
            raise gr.Error(f"{method} shows the same map for every class: choose another method to contrast classes.")
        if other != RUNNER_UP and other not in self.classes:
            raise gr.Error(f"Unknown class {other!r}: choose '{RUNNER_UP}' or one of {', '.join(self.classes)}.")
        small, display = model_input(image)
        with torch.no_grad():  # the plain forward the heatmaps explain (the label above may use TTA)
            chances = self.model(image_tensor(small, model_device(self.model))).softmax(1)[0].cpu()
        predicted, runner_up = chances.argsort(descending=True)[:2].tolist()
        rival = runner_up if other == RUNNER_UP else self.classes.index(other)
        if rival == predicted:
            raise gr.Error(f"The model predicts {other} itself: choose another class to contrast it with.")
        layers = (layer,)
        maps = [self._maps(small, layers, method, predicted)[0][layer], self._maps(small, layers, method, rival)[0][layer],
                self._maps(small, layers, method, predicted, rival)[0][layer]]
        scores = self._road(copies(small, 3), maps, [predicted, rival, predicted])
        a, b = self.classes[predicted], self.classes[rival]
        captions = [f"evidence for {a} · ROAD {scores[0]:+.2f}", f"evidence for {b} · ROAD {scores[1]:+.2f}",
                    f"{a} rather than {b} · ROAD {scores[2]:+.2f}"]
        gallery = [(image_file(overlay(display, cam, opacity)), caption) for cam, caption in zip(maps, captions)]
        text = (f"The model says **{a}** ({chances[predicted]:.0%}) rather than **{b}** ({chances[rival]:.0%}). "
                f"Left: where {method} at `{layer}` finds evidence for {a}; middle: for {b}; right: what makes the "
                f"model prefer {a} to {b} ({method} of the {a} logit minus the {b} logit). Each ROAD score is for the "
                f"class its map explains ({a} for the right one).")
        return gallery, text

    def compare_methods(self, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED, opacity: float = 0.5):
        """Every method's heatmap at `layer` for one image and class, most faithful (ROAD) first. Score-CAM is most
        of the wait: one forward pass per channel."""
        target_class = self._check(layer, "Grad-CAM", target, opacity)
        small, display = model_input(image)
        answers = {name: self._maps(small, (layer,), name, target_class) for name in METHODS}
        shown = next(iter(answers.values()))[1]
        scores = self._road(copies(small, len(METHODS)), [maps[layer] for maps, _ in answers.values()],
                            [shown] * len(METHODS))
        order = np.argsort(-scores, kind="stable")
        names = list(METHODS)
        gallery = [(image_file(overlay(display, answers[names[i]][0][layer], opacity)), f"{names[i]} · ROAD {scores[i]:+.2f}")
                   for i in order]
        text = (f"Every method at `{layer}` for **{self.classes[shown]}**, the most faithful to the model first "
                "(ROAD: higher is more faithful, random maps score about 0).")
        return gallery, text

    # -- Misclassified ----------------------------------------------------------------------
    def _mistakes(self, count, true_class, predicted_class):
        """Indices into the run's misclassified set (most confident mistakes first), and a summary line."""
        count = int(count)
        if not 1 <= count <= MAX_GALLERY:
            raise gr.Error(f"count must be between 1 and {MAX_GALLERY}, got {count}.")
        for name in (true_class, predicted_class):
            if name != ALL and name not in self.classes:
                raise gr.Error(f"Unknown class {name!r}: choose '{ALL}' or one of {', '.join(self.classes)}.")
        wrong = self.run.misclassified
        keep = np.ones(len(wrong["true"]), dtype=bool)
        if true_class != ALL:
            keep &= wrong["true"] == self.classes.index(true_class)
        if predicted_class != ALL:
            keep &= wrong["predicted"] == self.classes.index(predicted_class)
        chosen = np.flatnonzero(keep)
        chosen = chosen[np.argsort(-wrong["confidence"][chosen], kind="stable")][:count]
        return chosen, f"{len(chosen)} shown of {int(keep.sum())} matching ({len(keep)} misclassified test images in all)"

    def _mistake_maps(self, chosen, side: str):
        """The gallery's heatmaps of the chosen mistakes for their `side` ("predicted" or "true") class, and their ROAD
        scores: the run's stored ones when it has them (the same numbers), else computed now."""
        wrong = self.run.misclassified
        cams = gallery_heatmaps(self.model, wrong, side, chosen).astype(np.float32)
        stored = (self.run.faithfulness or {}).get("misclassified")
        if stored and len(stored[side]) == len(wrong[side]):
            return cams, np.asarray(stored[side])[chosen]
        return cams, road(self.model, image_tensor(wrong["images"][chosen]), cams, wrong[side][chosen].tolist()).score

    def misclassified(self, count: float = 25, true_class: str = ALL, predicted_class: str = ALL,
                      with_gradcam: bool = False, opacity: float = 0.5):
        """Misclassified test images (most confident mistakes first), captioned, optionally with Grad-CAM for the
        predicted class and its ROAD score."""
        self._check(opacity=opacity)
        chosen, text = self._mistakes(count, true_class, predicted_class)
        wrong = self.run.misclassified
        if with_gradcam and len(chosen):
            cams, scores = self._mistake_maps(chosen, "predicted")
        gallery = []
        for n, i in enumerate(chosen):
            picture = enlarge(wrong["images"][i], 128)
            caption = (f"{self.classes[wrong['true'][i]]} → {self.classes[wrong['predicted'][i]]} "
                       f"{100 * wrong['confidence'][i]:.0f}%")
            if with_gradcam:
                picture = overlay(picture, cams[n], opacity)
                caption += f" · ROAD {scores[n]:+.2f}"
            gallery.append((image_file(picture, exact=not with_gradcam), caption))
        return gallery, text

    def mistake_evidence(self, count: float = 10, true_class: str = ALL, predicted_class: str = ALL,
                         opacity: float = 0.5):
        """For each mistake (most confident first), Grad-CAM at layer4 for the class the model predicted beside
        Grad-CAM for the true class, each with its ROAD score: what misled it, and what it saw of the truth."""
        self._check(opacity=opacity)
        chosen, text = self._mistakes(count, true_class, predicted_class)
        if not len(chosen):
            return [], text
        wrong = self.run.misclassified
        evidence = {side: self._mistake_maps(chosen, side) for side in MISTAKE_SIDES}
        gallery = []
        for n, i in enumerate(chosen):
            picture = enlarge(wrong["images"][i], 128)
            for side in MISTAKE_SIDES:
                cams, scores = evidence[side]
                caption = f"{side}: {self.classes[wrong[side][i]]} · ROAD {scores[n]:+.2f}"
                if side == "predicted":
                    caption += f" ({100 * wrong['confidence'][i]:.0f}%)"
                gallery.append((image_file(overlay(picture, cams[n], opacity)), caption))
        return gallery, text
