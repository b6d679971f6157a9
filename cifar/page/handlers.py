"""What the page answers: each handler takes what a user gives (an upload, a layer, a class), checks it, asks the
explanation engine (cifar/engine/explainer.py) and renders its answer as pictures and text. Each public one is also a
named API endpoint; cifar/page/layout.py lays them out on the page.

A request runs the model only on its own image (or the run's stored misclassified images): the model, the curves,
the misclassified set and the faithfulness table are read once, at start-up.
"""

import gradio as gr
import numpy as np

from cifar.engine.calibration import scaled_probabilities
from cifar.engine.predict import check_tta
from cifar.engine.explainer import (CLASS_AGNOSTIC, COSTLY_METHODS, DEFAULT_LAYER, DEFAULT_METHOD, LAYERS,
                                    MISTAKE_SIDES, BASELINES, RANDOM, STAGE_LAYERS, Explainer)
from cifar.measure.faithfulness_table import summary
from cifar.engine.gradcam import METHODS
from cifar.engine.pictures import BadImage, enlarge, load_image, prepare
from cifar.page.image_files import image_file
from cifar.engine.pictures import overlay
from cifar.runs.folder import Run

PREDICTED = "predicted class"
RUNNER_UP = "runner-up"
ALL = "all"
MAX_GALLERY = 100
# What each method costs and means, shown under the method choice.
METHOD_COSTS = ("Each is one forward and one backward pass for all layers (milliseconds), except Score-CAM: one "
                "forward pass per channel (512 at layer4), 1.5 to 5 s for the heatmap at layer4 on a 2-core CPU and "
                "as long again for the strip of the four stages, which follows it. Eigen-CAM needs no backward pass, "
                "and shows the same map for every class.")


def model_input(image) -> tuple[np.ndarray, np.ndarray]:
    """(32x32 uint8 model input, DISPLAY_SIZE view of the same crop) of an upload, or a message for its sender."""
    try:
        return prepare(load_image(image))
    except BadImage as error:
        raise gr.Error(str(error)) from None


def heatmap_layers(layer: str, method: str) -> tuple:
    """The layers computed with the chosen one's heatmap. For a method that costs one pass for any number of layers,
    the strip's four stages too, so the strip that follows and a move between stages reuse them; for a costly
    one, the chosen layer alone, so its heatmap is not kept waiting for the strip."""
    if method in COSTLY_METHODS:
        return (layer,)
    return STAGE_LAYERS if layer in STAGE_LAYERS else (*STAGE_LAYERS, layer)


class Handlers:
    """The page's handlers, bound to one loaded run and its explanation engine."""

    def __init__(self, run: Run, tta: str | None = None):
        self.run = run
        self.classes = run.classes
        self.explainer = Explainer(run.model)
        # The run's own TTA unless the deployer trades it for latency (app.py --tta): each view is a
        # forward pass, ~6 ms of the 2-core CPU (BENCHMARKS.md).
        self.tta = tta or run.metrics["tta"]
        check_tta(self.tta)  # at start-up, not at the first request
        # The confidence shown is calibrated by the run's temperature (cifar/engine/calibration.py), which was fitted on the
        # logits of the run's own TTA: served with another, or from a run without one, it is shown raw.
        calibration = run.metrics.get("calibration")
        self.temperature = calibration["temperature"] if calibration and self.tta == run.metrics["tta"] else None
        # The mistakes' confidences as the page shows every other: calibrated, from the logits stored with the run; a run
        # without them, or served with another TTA, shows the softmax stored with its mistakes.
        wrong = run.misclassified
        self.mistake_confidence = wrong["confidence"]
        if self.temperature and run.predictions is not None:
            logits = run.predictions["logits_tta"][wrong["index"]]
            self.mistake_confidence = scaled_probabilities(logits, self.temperature).max(1).astype(np.float32)

    @property
    def test_accuracy(self) -> float:
        """The test accuracy of what is served: the run's TTA, or plain (the lower figure) for another."""
        metrics = self.run.metrics
        return metrics["test_accuracy_tta"] if self.tta == metrics["tta"] else metrics["test_accuracy"]

    # -- Checks -------------------------------------------------------------------------------------
    def check_controls(self, layer=DEFAULT_LAYER, method=DEFAULT_METHOD, target=PREDICTED, opacity=0.5) -> int | None:
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

    # -- Predict & explain ------------------------------------------------------------------------
    def predict(self, image, top_k: float = 3, calibrated: bool = True):
        """Top-k class probabilities (calibrated by the run's temperature, or raw), and the 32x32 image the model
        actually saw (enlarged)."""
        return self._predict(model_input(image), top_k, calibrated)

    def refresh_prediction(self, image, top_k, calibrated):
        """The prediction alone, for the page's calibrated/raw switch: with no image yet there is nothing to redo."""
        return gr.skip() if image is None else self._predict(model_input(image), top_k, calibrated)[0]

    def calibration_note(self) -> str:
        """What the page's calibrated/raw switch says about the confidence it shows."""
        if self.temperature is None:
            return "Raw softmax: this run has no temperature fitted for the test-time augmentation served."
        calibration = self.run.metrics["calibration"]
        return (f"Temperature scaling, T = {self.temperature:.2f}: expected calibration error "
                f"{100 * calibration['before']['ece']:.1f}% raw, {100 * calibration['after']['ece']:.1f}% calibrated, "
                f"on {calibration['reported_on']} (fitted on {calibration['fitted_on']}). Untick for the raw softmax.")

    def explain(self, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED,
                method: str = DEFAULT_METHOD, opacity: float = 0.5):
        """The heatmap of `method` at `layer` for class `target`, a strip across the four stages, and a caption."""
        prepared = model_input(image)
        heatmap, caption = self._heatmap(prepared, layer, target, method, opacity)
        return heatmap, self._strip(prepared, layer, target, method, opacity), caption

    def analyze(self, image, top_k, layer, target, method, opacity, calibrated=True):
        """predict and explain, the upload decoded once: what the page runs on an upload or an example click. For a
        costly method (Score-CAM) the strip is left empty here, so the heatmap is not kept waiting for it:
        refresh_strip draws it next."""
        prepared = model_input(image)
        return *self._predict(prepared, top_k, calibrated), *self._page_explanation(prepared, layer, target, method,
                                                                                    opacity)

    def refresh_explanation(self, image, layer, target, method, opacity):
        """analyze without the prediction, for the page's controls: with no image yet there is nothing to redo."""
        if image is None:
            return None, [], ""
        return self._page_explanation(model_input(image), layer, target, method, opacity)

    def refresh_heatmap(self, image, layer, target, method, opacity):
        """The chosen layer's heatmap and caption, for a change of layer: the strip shows the four stages whichever
        layer is chosen, so it stays as it is (one picture sent instead of five)."""
        if image is None:
            return None, ""
        heatmap, caption = self._heatmap(model_input(image), layer, target, method, opacity)
        return self._labelled(heatmap, layer, method), caption

    def refresh_strip(self, image, layer, target, method, opacity):
        """The strip, for the page, after a costly method's heatmap; for the others it came with the heatmap and is
        left as it is."""
        if image is None or method not in COSTLY_METHODS:
            return gr.skip()
        return self._strip(model_input(image), layer, target, method, opacity)

    def _page_explanation(self, prepared, layer, target, method, opacity):
        heatmap, caption = self._heatmap(prepared, layer, target, method, opacity)
        strip = [] if method in COSTLY_METHODS else self._strip(prepared, layer, target, method, opacity)
        return self._labelled(heatmap, layer, method), strip, caption

    def _predict(self, prepared, top_k, calibrated):
        top_k = int(top_k)
        if not 1 <= top_k <= len(self.classes):
            raise gr.Error(f"top_k must be between 1 and {len(self.classes)}, got {top_k}.")
        small, _ = prepared
        temperature = self.temperature if calibrated and self.temperature else 1.0
        probabilities = self.explainer.probabilities(small, self.tta, temperature)
        best = np.argsort(-probabilities)[:top_k]
        return {self.classes[i]: float(probabilities[i]) for i in best}, image_file(enlarge(small), exact=True)

    def _heatmap(self, prepared, layer, target, method, opacity):
        target_class = self.check_controls(layer, method, target, opacity)
        small, display = prepared
        explanation = self.explainer.explain(small, heatmap_layers(layer, method), method, target_class)
        if method in CLASS_AGNOSTIC:
            caption = f"{method} at `{layer}` (the same map for every class: {CLASS_AGNOSTIC[method]})"
        else:
            caption = f"{method} for **{self.classes[explanation.explained_class]}** at `{layer}`"
        if not explanation.maps[layer].any():
            caption += (": nothing here counts for this class (the weighted activations are negative everywhere); "
                        "the stage outputs below show where the evidence is")
        return image_file(overlay(display, explanation.maps[layer], opacity)), caption

    def _strip(self, prepared, layer, target, method, opacity):
        target_class = self.check_controls(layer, method, target, opacity)
        small, display = prepared
        maps = self.explainer.explain(small, STAGE_LAYERS, method, target_class).maps
        return [(image_file(overlay(display, maps[stage], opacity)), stage) for stage in STAGE_LAYERS]

    @staticmethod
    def _labelled(heatmap: str, layer: str, method: str):
        """The heatmap, its label on the page naming what it shows (an update: no component is made at request time)."""
        return gr.update(value=heatmap, label=f"{method} at {layer}")

    # -- How faithful ---------------------------------------------------------------------------
    def faithfulness(self, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED, method: str = DEFAULT_METHOD):
        """The ROAD score of the heatmap /explain shows and of the four in its strip: a sentence for people,
        and {layer: score} for programs. On the page it arrives after the heatmap, which does not wait for it."""
        target_class = self.check_controls(layer, method, target)
        small, _ = model_input(image)
        layers = tuple(dict.fromkeys((layer, *STAGE_LAYERS)))
        result = self.explainer.faithfulness(small, layers, method, target_class)
        shown = self.explainer.explain(small, (layer,), method, target_class).explained_class
        scores = {name: float(score) for name, score in zip(layers, result.score)}
        name = self.classes[shown]
        text = (f"**Faithfulness (ROAD): {scores[layer]:+.2f}**: removing the pixels this heatmap marks most relevant "
                f"lowers P({name}) by {result.most_relevant_first[0]:.2f} on average, removing the least relevant "
                f"by {result.least_relevant_first[0]:.2f}. Higher is more faithful; random maps score about 0.")
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
        mean, error, beaten = rows[method][layer]
        missed = [name.lower() for name in BASELINES if name in rows and layer in rows[name] and name not in beaten]
        verdict = f" (no better than: {', '.join(missed)})" if missed else " (better than every baseline)"
        return (f" Over {len(table['test_indices'])} test images, {method} at `{layer}` averages {mean:+.3f} ± "
                f"{error:.3f}{verdict}; random maps {rows[RANDOM][layer][0]:+.3f}.")

    # -- Contrast and comparison ----------------------------------------------------------------
    def contrast(self, image, other: str = RUNNER_UP, layer: str = DEFAULT_LAYER, method: str = DEFAULT_METHOD,
                 opacity: float = 0.5):
        """Why the predicted class and not `other` (default: the runner-up): the heatmap for each, and the map of
        what makes the model prefer the first (its logit minus the other's), each with its ROAD score."""
        self.check_controls(layer, method, PREDICTED, opacity)
        if method in CLASS_AGNOSTIC:
            raise gr.Error(f"{method} shows the same map for every class: choose another method to contrast classes.")
        if other != RUNNER_UP and other not in self.classes:
            raise gr.Error(f"Unknown class {other!r}: choose '{RUNNER_UP}' or one of {', '.join(self.classes)}.")
        small, display = model_input(image)
        chances = self.explainer.probabilities(small)  # the plain forward the heatmaps explain (the label may use TTA)
        predicted, runner_up = np.argsort(-chances, kind="stable")[:2].tolist()
        rival = runner_up if other == RUNNER_UP else self.classes.index(other)
        if rival == predicted:
            raise gr.Error(f"The model predicts {other} itself: choose another class to contrast it with.")
        asked = [(predicted, None), (rival, None), (predicted, rival)]  # (target, contrast) of each map
        maps = [self.explainer.explain(small, (layer,), method, t, c).maps[layer] for t, c in asked]
        scores = [float(self.explainer.faithfulness(small, (layer,), method, t, c).score[0]) for t, c in asked]
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
        target_class = self.check_controls(layer, DEFAULT_METHOD, target, opacity)
        small, display = model_input(image)
        maps = {name: self.explainer.explain(small, (layer,), name, target_class) for name in METHODS}
        scores = {name: float(self.explainer.faithfulness(small, (layer,), name, target_class).score[0])
                  for name in METHODS}
        order = sorted(METHODS, key=lambda name: -scores[name])  # stable: ties keep the methods' order
        gallery = [(image_file(overlay(display, maps[name].maps[layer], opacity)), f"{name} · ROAD {scores[name]:+.2f}")
                   for name in order]
        shown = maps[DEFAULT_METHOD].explained_class
        text = (f"Every method at `{layer}` for **{self.classes[shown]}**, the most faithful to the model first "
                "(ROAD: higher is more faithful, random maps score about 0).")
        return gallery, text

    def refresh_contrast(self, image, other, layer, method, opacity):
        """contrast, for the Compare tab when it is opened: with no image yet, what to do first."""
        if image is None:
            return [], "Upload a picture (or click an example) on **Predict & explain** first."
        if method in CLASS_AGNOSTIC:
            return [], f"{method} shows the same map for every class: choose another method to contrast classes."
        return self.contrast(image, other, layer, method, opacity)

    def refresh_compare_methods(self, image, layer, target, opacity):
        """compare_methods, for the Compare tab when it is opened."""
        return ([], "") if image is None else self.compare_methods(image, layer, target, opacity)

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
        chosen = chosen[np.argsort(-self.mistake_confidence[chosen], kind="stable")][:count]
        return chosen, f"{len(chosen)} shown of {int(keep.sum())} matching ({len(keep)} misclassified test images in all)"

    def _gallery_scores(self, chosen, side: str):
        stored = (self.run.faithfulness or {}).get("misclassified")
        return self.explainer.gallery_scores(self.run.misclassified, side, chosen, stored)

    def misclassified(self, count: float = 25, true_class: str = ALL, predicted_class: str = ALL,
                      with_gradcam: bool = False, opacity: float = 0.5):
        """Misclassified test images (most confident mistakes first), captioned, optionally with the gallery's
        heatmap (Grad-CAM at layer4) for the predicted class and its ROAD score."""
        self.check_controls(opacity=opacity)
        chosen, text = self._mistakes(count, true_class, predicted_class)
        wrong = self.run.misclassified
        if with_gradcam and len(chosen):
            cams, scores = self._gallery_scores(chosen, "predicted")
        gallery = []
        for n, i in enumerate(chosen):
            picture = enlarge(wrong["images"][i], 128)
            caption = (f"{self.classes[wrong['true'][i]]} → {self.classes[wrong['predicted'][i]]} "
                       f"{100 * self.mistake_confidence[i]:.0f}%")
            if with_gradcam:
                picture = overlay(picture, cams[n], opacity)
                caption += f" · ROAD {scores[n]:+.2f}"
            gallery.append((image_file(picture, exact=not with_gradcam), caption))
        return gallery, text

    def mistake_evidence(self, count: float = 10, true_class: str = ALL, predicted_class: str = ALL,
                         opacity: float = 0.5):
        """For each mistake (most confident first), the gallery's heatmap for the class the model predicted beside
        the one for the true class, each with its ROAD score: what misled it, and what it saw of the truth."""
        self.check_controls(opacity=opacity)
        chosen, text = self._mistakes(count, true_class, predicted_class)
        if not len(chosen):
            return [], text
        wrong = self.run.misclassified
        evidence = {side: self._gallery_scores(chosen, side) for side in MISTAKE_SIDES}
        gallery = []
        for n, i in enumerate(chosen):
            picture = enlarge(wrong["images"][i], 128)
            for side in MISTAKE_SIDES:
                cams, scores = evidence[side]
                caption = f"{side}: {self.classes[wrong[side][i]]} · ROAD {scores[n]:+.2f}"
                if side == "predicted":
                    caption += f" ({100 * self.mistake_confidence[i]:.0f}%)"
                gallery.append((image_file(overlay(picture, cams[n], opacity)), caption))
        return gallery, text
