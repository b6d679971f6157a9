"""The page's Test set tab: the 10,000 test images chosen by true and predicted class, right or wrong and a confidence
range, each with any method's heatmap; the selection's mean heatmap; each class's (when the run has them); and the
selection exported as a ZIP. The handlers check what they are given, ask cifar/test_set.py and render; browse and
export are named API endpoints.
"""

import hashlib

import gradio as gr
import numpy as np

from cifar.engine.explainer import COSTLY_METHODS, DEFAULT_LAYER, DEFAULT_METHOD, LAYERS, MISTAKE_SIDES
from cifar.engine.gradcam import METHODS
from cifar.engine.pictures import enlarge
from cifar.files import atomic_write
from cifar.page.image_files import IMAGE_DIR, image_file
from cifar.engine.pictures import overlay
from cifar.engine.model import WEIGHTS_NAME
from cifar.runs.folder import CLASS_HEATMAPS_FIGURE
from cifar.page.served import OnePerModel, Served
from cifar.engine.test_set import CORRECTNESS, UNIFORM_CENTRE_SHARE, TestSet, centre_share, versions
from cifar.measure.class_heatmaps import percent

ANY = "any"
# The most images one request explains: a gradient method's heatmaps take milliseconds each; Score-CAM's seconds.
MOST_SHOWN = {"quick": 100, "Score-CAM": 10}
PICTURE_SIZE = 128


def heatmap_picture(heatmap: np.ndarray) -> np.ndarray:
    """A [0, 1] map alone, in the overlays' colours, PICTURE_SIZE pixels square."""
    return overlay(np.zeros((PICTURE_SIZE, PICTURE_SIZE, 3), np.uint8), heatmap, opacity=1.0)


class BrowseHandlers:
    """The Test set tab's handlers, for one test set and the served model's answers on it."""

    def __init__(self, test_set: TestSet, model: dict, tta: str):
        self.test_set, self.classes = test_set, test_set.classes
        self.model, self.tta = model, tta

    @classmethod
    def for_run(cls, run, explainer, tta: str, temperature: float | None, test_set: tuple) -> "BrowseHandlers":
        """For the test set (images, labels: read_test_set's, read once for every model served), served by `run`'s
        model with `tta`: the run's stored logits when they are that TTA's (ValueError if they are not this test
        set's)."""
        images, labels = test_set
        stored = run.predictions or {}
        logits = {run.metrics["tta"]: stored.get("logits_tta"), "none": stored.get("logits")}.get(tta)
        test_set = TestSet(images, labels, run.classes, explainer, tta, logits, temperature)
        weights = hashlib.sha256((run.path / WEIGHTS_NAME).read_bytes()).hexdigest()
        return cls(test_set, {"run": str(run.path), "weights_sha256": weights}, tta)

    def _choose(self, true_class, predicted_class, correctness, min_confidence, max_confidence, method, layer, side,
                count, opacity):
        """The selection the arguments ask for, or a message for the user."""
        for name in (true_class, predicted_class):
            if name != ANY and name not in self.classes:
                raise gr.Error(f"Unknown class {name!r}: choose '{ANY}' or one of {', '.join(self.classes)}.")
        if correctness not in CORRECTNESS:
            raise gr.Error(f"Unknown choice {correctness!r}: choose one of {', '.join(CORRECTNESS)}.")
        if not 0 <= min_confidence <= max_confidence <= 1:
            raise gr.Error(f"The confidence range must lie in [0, 1], lowest first; got {min_confidence} to "
                           f"{max_confidence}.")
        if method not in METHODS:
            raise gr.Error(f"Unknown method {method!r}: choose one of {', '.join(METHODS)}.")
        if layer not in LAYERS:
            raise gr.Error(f"Unknown layer {layer!r}: choose one of {', '.join(LAYERS)}.")
        if side not in MISTAKE_SIDES:
            raise gr.Error(f"Heatmaps are for the {' or the '.join(MISTAKE_SIDES)} class, not {side!r}.")
        most = MOST_SHOWN["Score-CAM" if method in COSTLY_METHODS else "quick"]
        if not 1 <= int(count) <= most:
            raise gr.Error(f"{method} explains between 1 and {most} images at a time, not {count}.")
        if not 0 <= opacity <= 1:
            raise gr.Error(f"opacity must be between 0 and 1, got {opacity}.")
        index = {ANY: None, **{name: i for i, name in enumerate(self.classes)}}
        return self.test_set.select(index[true_class], index[predicted_class], correctness,
                                    (min_confidence, max_confidence), int(count))

    def browse(self, true_class: str = ANY, predicted_class: str = ANY, correctness: str = "all",
               min_confidence: float = 0.0, max_confidence: float = 1.0, method: str = DEFAULT_METHOD,
               layer: str = DEFAULT_LAYER, side: str = "predicted", count: float = 25, opacity: float = 0.5):
        """The first `count` matching test images (test-set order) with their heatmaps, captioned; a summary; the
        mean heatmap of those shown; and their test-set indices."""
        selection = self._choose(true_class, predicted_class, correctness, min_confidence, max_confidence, method,
                                 layer, side, count, opacity)
        indices = selection.indices
        summary = self._summary(selection)
        if not len(indices):
            return [], summary, None, []
        maps = self.test_set.heatmaps(indices, method, layer, side)
        predicted, confidence, labels = self.test_set.predicted, self.test_set.confidence, self.test_set.labels
        gallery = []
        for i, heatmap in zip(indices, maps):
            mark = "✓" if predicted[i] == labels[i] else "✗"
            caption = (f"#{i} {self.classes[labels[i]]} → {self.classes[predicted[i]]} {mark} "
                       f"{100 * confidence[i]:.0f}%")
            gallery.append((image_file(overlay(enlarge(self.test_set.images[i], PICTURE_SIZE), heatmap, opacity)),
                            caption))
        mean = maps.mean(0)
        share = float(centre_share(mean))
        summary += (f"\n\nMean {method} heatmap at `{layer}` of the {len(indices)} shown, each for its {side} class: "
                    f"{100 * share:.0f}% of its mass in the central quarter ({100 * UNIFORM_CENTRE_SHARE:.0f}% for an "
                    "even spread).")
        return gallery, summary, image_file(heatmap_picture(mean / max(float(mean.max()), 1e-6))), indices.tolist()

    def export(self, true_class: str = ANY, predicted_class: str = ANY, correctness: str = "all",
               min_confidence: float = 0.0, max_confidence: float = 1.0, method: str = DEFAULT_METHOD,
               layer: str = DEFAULT_LAYER, side: str = "predicted", count: float = 25, opacity: float = 0.5) -> str:
        """The selection browse shows, as a ZIP: images, heatmaps (PNG and .npy), index.csv (index, true class,
        prediction, calibrated confidence, ROAD) and manifest.json (model, method, layer, TTA, versions)."""
        selection = self._choose(true_class, predicted_class, correctness, min_confidence, max_confidence, method,
                                 layer, side, count, opacity)
        indices = selection.indices
        maps = self.test_set.heatmaps(indices, method, layer, side) if len(indices) else np.zeros((0, 32, 32))
        road = self.test_set.road(indices, maps, side) if len(indices) else np.zeros(0)
        manifest = {"model": self.model, "method": method, "layer": layer, "heatmaps_for": f"the {side} class",
                    "tta": self.tta, "temperature": self.test_set.temperature,
                    "confidence": "calibrated" if self.test_set.temperature else "raw softmax",
                    "selection": {"true_class": true_class, "predicted_class": predicted_class,
                                  "correctness": correctness, "confidence": [min_confidence, max_confidence],
                                  "count": int(count), "matching": selection.matching, "exported": len(indices)},
                    "road": "ROAD (most relevant first minus least relevant first), for the class the heatmap explains",
                    "versions": versions()}
        data = self.test_set.export(indices, maps, road, manifest)
        path = IMAGE_DIR / f"test-set-{hashlib.sha256(data).hexdigest()[:16]}.zip"
        IMAGE_DIR.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
        return str(path)

    def _summary(self, selection) -> str:
        total = len(self.test_set.labels)
        return f"{len(selection.indices)} shown of {selection.matching} matching ({total} test images)"

    def class_heatmaps_text(self, metrics: dict) -> str:
        """The run's per-class centre shares (python -m cifar.measure.class_heatmaps), or how to compute them."""
        value = metrics.get("class_heatmaps")
        if not value:
            return ("Each class's mean heatmap is not in this run yet: `python -m cifar.measure.class_heatmaps RUN_FOLDER` computes "
                    "it over the whole test set.")
        rows = " · ".join(f"{name} {percent(share)}" for name, share in value["centre_share_of_mean_map"].items())
        return (f"Each class's mean {value['method']} heatmap at `{value['layer']}` over its test images "
                f"({value['images']} in all), for the true class; the share of its mass in the central quarter: "
                f"{rows}.")


def build_tab(browsers: Served | None, runs: dict, shown: OnePerModel, model, gpu_task, opacity) -> None:
    """The Test set tab's controls and events (inside the page's Blocks), answered by the model chosen on the page.
    Without a test set, what to do instead."""
    if browsers is None:
        gr.Markdown("No test set is loaded: start the app with `--test-set` (a folder with CIFAR-10's `test.npz`, or "
                    "the file) to browse and export the 10,000 test images.")
        return
    classes = browsers.first.classes
    with gr.Row():
        true_class = gr.Dropdown([ANY] + classes, value=ANY, label="True class")
        predicted_class = gr.Dropdown([ANY] + classes, value=ANY, label="Predicted class")
        correctness = gr.Radio(list(CORRECTNESS), value="all", label="Right or wrong")
    with gr.Row():
        min_confidence = gr.Slider(0, 1, value=0, step=0.01, label="Confidence from")
        max_confidence = gr.Slider(0, 1, value=1, step=0.01, label="to")
        count = gr.Slider(1, MOST_SHOWN["quick"], value=25, step=1, label="How many",
                          info=f"Score-CAM: at most {MOST_SHOWN['Score-CAM']}, seconds each")
    with gr.Row():
        method = gr.Dropdown(list(METHODS), value=DEFAULT_METHOD, label="Method")
        layer = gr.Dropdown(list(LAYERS), value=DEFAULT_LAYER, label="Layer")
        side = gr.Radio(list(MISTAKE_SIDES), value="predicted", label="Heatmap for the")
    with gr.Row():
        show = gr.Button("Show", variant="primary")
        export = gr.Button("Export the selection (ZIP)")
    summary = gr.Markdown(elem_id="test-set-summary")
    with gr.Row():
        gallery = gr.Gallery(label="Test images: #index true → predicted (confidence)", columns=5, height="auto",
                             elem_id="test-set", scale=3)
        mean_map = gr.Image(label="Mean heatmap of those shown", interactive=False, height=256, scale=1)
    selection = gr.JSON(visible=False)
    archive = gr.File(label="Exported selection", elem_id="test-set-export", height=120)
    inputs = [true_class, predicted_class, correctness, min_confidence, max_confidence, method, layer, side, count,
              opacity, model]
    browse, export_selection = gpu_task(browsers.route("browse")), gpu_task(browsers.route("export"))
    show.click(browse, inputs, [gallery, summary, mean_map, selection], api_name="browse")
    export.click(export_selection, inputs, archive, api_name="export")
    # Another model's answers differ: the last one's selection is cleared rather than left under the new name.
    model.change(lambda: ([], "", None, [], None), None, [gallery, summary, mean_map, selection, archive],
                 api_visibility="private", queue=False)
    for name in shown.each():
        run = runs[name]
        gr.Markdown(browsers[name].class_heatmaps_text(run.metrics), elem_id=shown.id("class-heatmaps", name))
        if (run.path / CLASS_HEATMAPS_FIGURE).is_file():
            gr.Image(str(run.path / CLASS_HEATMAPS_FIGURE), label="Where the model looks, class by class",
                     interactive=False)
