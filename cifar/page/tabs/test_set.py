"""The Test set tab: the 10,000 test images chosen by true and predicted class, right or wrong and a confidence range,
each with any method's heatmap; the selection's mean heatmap; each class's (when the run has them); and the selection
exported as a ZIP (/browse, /export). The engine's TestSet (cifar/engine/test_set.py) holds each model's answers.
"""

import gradio as gr
import numpy as np

from cifar.engine.explainer import COSTLY_METHODS, DEFAULT_LAYER, DEFAULT_METHOD, LAYERS, MISTAKE_SIDES
from cifar.engine.cam import METHODS
from cifar.engine.pictures import THUMBNAIL_SIZE, enlarge, overlay
from cifar.engine.test_set import CORRECTNESS, UNIFORM_CENTRE_SHARE, centre_share
from cifar.measure.class_heatmaps import percent
from cifar.page.controls import check_between, check_choice, class_index
from cifar.page.endpoints import BY_METHOD, endpoint
from cifar.page.image_files import ROAD_MEANING, archive_file, image_file
from cifar.page.served import OnePerModel, ServedModels, draw_each
from cifar.runs.folder import CLASS_HEATMAPS_FIGURE

ANY = "any"
# The most images one request explains: a gradient method's heatmaps take milliseconds each, a costly method's seconds.
MOST_SHOWN = {"quick": 100, "costly": 10}


def heatmap_picture(heatmap: np.ndarray) -> np.ndarray:
    """A [0, 1] map alone, in the overlays' colours, a thumbnail's size."""
    return overlay(np.zeros((THUMBNAIL_SIZE, THUMBNAIL_SIZE, 3), np.uint8), heatmap, opacity=1.0)


def check_shown(method: str, layer: str, side: str, count: float, opacity: float) -> None:
    """Refuses heatmaps of test images the tab cannot show, with a message for the user."""
    check_choice("method", method, METHODS)
    check_choice("layer", layer, LAYERS)
    if side not in MISTAKE_SIDES:
        raise gr.Error(f"Heatmaps are for the {' or the '.join(MISTAKE_SIDES)} class, not {side!r}.")
    most = MOST_SHOWN["costly" if method in COSTLY_METHODS else "quick"]
    if not 1 <= int(count) <= most:
        raise gr.Error(f"{method} explains between 1 and {most} images at a time, not {count}.")
    check_between("opacity", opacity, 0, 1)


def gallery(served, indices: np.ndarray, method: str, layer: str, side: str, opacity: float) -> tuple[list, np.ndarray]:
    """(a gallery of those test images with their heatmaps, captioned #index true → predicted ✓/✗ confidence; the
    heatmaps (N, 32, 32)): what the Test set and the Test-set map tabs show of a selection."""
    test_set = served.test_set
    maps = test_set.heatmaps(indices, method, layer, side)
    predicted, confidence, labels = test_set.predicted, test_set.confidence, test_set.labels
    shown = []
    for i, heatmap in zip(indices, maps):
        mark = "✓" if predicted[i] == labels[i] else "✗"
        caption = f"#{i} {served.classes[labels[i]]} → {served.classes[predicted[i]]} {mark} {100 * confidence[i]:.0f}%"
        shown.append((image_file(overlay(enlarge(test_set.images[i], THUMBNAIL_SIZE), heatmap, opacity)), caption))
    return shown, maps


def export_file(served, indices: np.ndarray, method: str, layer: str, side: str, selection: dict) -> str:
    """Those test images as a ZIP (TestSet.export), its manifest saying how they were chosen (`selection`)."""
    test_set = served.test_set
    maps = test_set.heatmaps(indices, method, layer, side) if len(indices) else np.zeros((0, 32, 32))
    road = test_set.road(indices, maps, side) if len(indices) else np.zeros(0)
    manifest = {"model": served.identity, "method": method, "layer": layer, "heatmaps_for": f"the {side} class",
                "tta": served.tta, "temperature": test_set.temperature,
                "confidence": "calibrated" if test_set.temperature else "raw softmax", "selection": selection,
                "road": ROAD_MEANING}
    return archive_file(test_set.export(indices, maps, road, manifest), "test-set")


class TestSetTab:
    """The tab's handlers, answered by each served model's TestSet (None: the page browses no test set)."""

    __test__ = False  # a name pytest would otherwise take for a test class

    def __init__(self, models: ServedModels):
        self.models = models

    def _choose(self, true_class, predicted_class, correctness, min_confidence, max_confidence, method, layer, side,
                count, opacity, model):
        """(the model's TestSet, the selection the arguments ask for), or a message for the user."""
        served = self.models[model]
        if served.test_set is None:
            raise gr.Error("No test set is loaded: start the app with --test-set to browse it.")
        index = {name: class_index(name, served.classes, ANY) for name in (true_class, predicted_class)}
        check_choice("choice", correctness, CORRECTNESS)
        if not 0 <= min_confidence <= max_confidence <= 1:
            raise gr.Error(f"The confidence range must lie in [0, 1], lowest first; got {min_confidence} to "
                           f"{max_confidence}.")
        check_shown(method, layer, side, count, opacity)
        return served, served.test_set.select(index[true_class], index[predicted_class], correctness,
                                              (min_confidence, max_confidence), int(count))

    @endpoint(BY_METHOD)
    def browse(self, true_class: str = ANY, predicted_class: str = ANY, correctness: str = "all",
               min_confidence: float = 0.0, max_confidence: float = 1.0, method: str = DEFAULT_METHOD,
               layer: str = DEFAULT_LAYER, side: str = "predicted", count: float = 25, opacity: float = 0.5,
               model: str | None = None):
        """The first `count` matching test images (test-set order) with their heatmaps, captioned; a summary; the
        mean heatmap of those shown; and their test-set indices."""
        served, selection = self._choose(true_class, predicted_class, correctness, min_confidence, max_confidence,
                                         method, layer, side, count, opacity, model)
        indices = selection.indices
        summary = f"{len(indices)} shown of {selection.matching} matching ({len(served.test_set.labels)} test images)"
        if not len(indices):
            return [], summary, None, []
        shown, maps = gallery(served, indices, method, layer, side, opacity)
        mean = maps.mean(0)
        share = float(centre_share(mean))
        summary += (f"\n\nMean {method} heatmap at `{layer}` of the {len(indices)} shown, each for its {side} class: "
                    f"{100 * share:.0f}% of its mass in the central quarter ({100 * UNIFORM_CENTRE_SHARE:.0f}% for an "
                    "even spread).")
        return shown, summary, image_file(heatmap_picture(mean / max(float(mean.max()), 1e-6))), indices.tolist()

    @endpoint(BY_METHOD)
    def export(self, true_class: str = ANY, predicted_class: str = ANY, correctness: str = "all",
               min_confidence: float = 0.0, max_confidence: float = 1.0, method: str = DEFAULT_METHOD,
               layer: str = DEFAULT_LAYER, side: str = "predicted", count: float = 25, opacity: float = 0.5,
               model: str | None = None) -> str:
        """The selection browse shows, as a ZIP: images, heatmaps (PNG and .npy), index.csv (index, true class,
        prediction, calibrated confidence, ROAD) and manifest.json (model, method, layer, TTA, versions)."""
        served, selection = self._choose(true_class, predicted_class, correctness, min_confidence, max_confidence,
                                         method, layer, side, count, opacity, model)
        return export_file(served, selection.indices, method, layer, side,
                           {"true_class": true_class, "predicted_class": predicted_class, "correctness": correctness,
                            "confidence": [min_confidence, max_confidence], "count": int(count),
                            "matching": selection.matching, "exported": len(selection.indices)})

    def build(self, page, picture) -> None:
        """The tab's controls and events (inside the page's Blocks), answered by the model chosen on the page. Without
        a test set, what to do instead."""
        if self.models.first.test_set is None:
            gr.Markdown("No test set is loaded: start the app with `--test-set` (a folder with CIFAR-10's `test.npz`, "
                        "or the file) to browse and export the 10,000 test images.")
            return
        classes, endpoints, model = self.models.first.classes, page.endpoints, page.model
        with gr.Row():
            true_class = gr.Dropdown([ANY] + classes, value=ANY, label="True class")
            predicted_class = gr.Dropdown([ANY] + classes, value=ANY, label="Predicted class")
            correctness = gr.Radio(list(CORRECTNESS), value="all", label="Right or wrong")
        with gr.Row():
            min_confidence = gr.Slider(0, 1, value=0, step=0.01, label="Confidence from")
            max_confidence = gr.Slider(0, 1, value=1, step=0.01, label="to")
            count = gr.Slider(1, MOST_SHOWN["quick"], value=25, step=1, label="How many",
                              info=f"{', '.join(COSTLY_METHODS)}: at most {MOST_SHOWN['costly']}, seconds each")
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
                  picture.opacity, model]
        browsed = [gallery, summary, mean_map, selection]
        endpoints.api("browse", inputs, browsed)
        endpoints.api("export", inputs, archive)
        endpoints.on(show.click, "browse", inputs, browsed)
        endpoints.on(export.click, "export", inputs, archive)
        # Another model's answers differ: the last one's selection is cleared rather than left under the new name.
        model.change(lambda: ([], "", None, [], None), None, [*browsed, archive], api_visibility="private",
                     queue=False)
        draw_each(self.models, model, draw_class_heatmaps)


def draw_class_heatmaps(served, shown: OnePerModel) -> None:
    """One model's mean heatmap of each class, when its run has them (inside the page's Blocks)."""
    run = served.run
    gr.Markdown(class_heatmaps_text(run.metrics), elem_id=shown.id("class-heatmaps", served.name))
    if (run.path / CLASS_HEATMAPS_FIGURE).is_file():
        gr.Image(str(run.path / CLASS_HEATMAPS_FIGURE), label="Where the model looks, class by class",
                 interactive=False)


def class_heatmaps_text(metrics: dict) -> str:
    """The run's per-class centre shares (python -m cifar.measure.class_heatmaps), or how to compute them."""
    value = metrics.get("class_heatmaps")
    if not value:
        return ("Each class's mean heatmap is not in this run yet: `python -m cifar.measure.class_heatmaps RUN_FOLDER` "
                "computes it over the whole test set.")
    rows = " · ".join(f"{name} {percent(share)}" for name, share in value["centre_share_of_mean_map"].items())
    return (f"Each class's mean {value['method']} heatmap at `{value['layer']}` over its test images "
            f"({value['images']} in all), for the true class; the share of its mass in the central quarter: "
            f"{rows}.")
