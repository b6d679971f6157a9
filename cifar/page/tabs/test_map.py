"""The Test-set map tab: the 10,000 test images as points (the run's test_map.npz: python -m cifar.measure.test_map),
coloured by true or predicted class, right or wrong, calibrated confidence or where two models disagree; paint over
an area (or a point) to see those images with any method's heatmaps, or export them as the Test set tab does
(/test_map, /map_area, /map_export). The map and its summaries need only the run folder; the pictures and their
heatmaps need the test set (--test-set).
"""

import gradio as gr
import numpy as np

from cifar.dataset import TestSetError
from cifar.engine.calibration import scaled_probabilities
from cifar.engine.cam import METHODS
from cifar.engine.explainer import DEFAULT_LAYER, DEFAULT_METHOD, LAYERS, MISTAKE_SIDES
from cifar.engine.test_map import COLOURINGS, MAP_SIZE, TestMap, colouring
from cifar.page.controls import check_choice, painted_mask
from cifar.page.endpoints import BY_METHOD, endpoint
from cifar.page.image_files import image_file
from cifar.page.served import ServedModels
from cifar.page.tabs.test_set import MOST_SHOWN, check_shown, export_file, gallery

NEEDS_A_MAP = ("This run has no map of its test set yet: `python -m cifar.measure.test_map RUN_FOLDER --data-dir "
               "../shared/cifar10` computes it (a minute or two on a CPU).")


class MapOfRun:
    """One served model's map: its points, the test set's labels, and the model's answers as the run stored them
    (its TTA, calibrated by its temperature), which is what the map is coloured by."""

    def __init__(self, served):
        stored, metrics = served.run.test_map, served.run.metrics
        self.map, self.labels = TestMap(stored["points"]), stored["labels"].astype(np.int64)
        logits = served.run.predictions["logits_tta"]
        temperature = (metrics.get("calibration") or {}).get("temperature", 1.0)
        self.predicted = logits.argmax(1)
        self.confidence = scaled_probabilities(logits, temperature).max(1)
        if served.test_set is not None and not np.array_equal(served.test_set.labels, self.labels):
            raise TestSetError(f"the map of {served.name} was made on another test set than the one given")
        self.drawn = {}  # colouring -> the drawn map: the same points and answers always draw the same picture

    def chosen(self, indices: np.ndarray, count: float) -> np.ndarray:
        """The first `count` of those test images to show: mistakes first (what a map is looked at for), each group
        in test-set order."""
        wrong = self.predicted[indices] != self.labels[indices]
        return np.concatenate([indices[wrong], indices[~wrong]])[:int(count)]


class TestMapTab:
    __test__ = False  # a name pytest would otherwise take for a test class

    def __init__(self, models: ServedModels):
        self.models = models
        self.maps = {served.name: MapOfRun(served) for served in models
                     if served.run.test_map is not None and served.run.predictions is not None}

    def _map_of(self, model) -> tuple:
        served = self.models[model]
        if served.name not in self.maps:
            raise gr.Error(f"{served.name}: {NEEDS_A_MAP}")
        return served, self.maps[served.name]

    def _other(self, name: str) -> str | None:
        """The model the disagreement colouring compares with: the first other one with a map's answers."""
        return next((other for other in self.maps if other != name), None)

    @endpoint(None)
    def test_map(self, colour_by: str = COLOURINGS[0], model: str | None = None) -> str:
        """The map of the 10,000 test images (each a point; images the model sees alike lie close together), coloured
        by `colour_by`: true class, predicted class, right or wrong, calibrated confidence, or where the models
        disagree (with two models). An area of it: /map_area."""
        served, mapped = self._map_of(model)
        check_choice("colouring", colour_by, COLOURINGS)
        other = self._other(served.name)
        if colour_by == COLOURINGS[4] and other is None:
            raise gr.Error("Where the models disagree needs a second model with a map: start the app with two.")
        if colour_by not in mapped.drawn:
            mapped.drawn[colour_by] = mapped.map.draw(colouring(
                colour_by, served.classes, mapped.labels, mapped.predicted, mapped.confidence,
                other and self.maps[other].predicted, other or ""))
        return image_file(mapped.drawn[colour_by], exact=True)

    def _area(self, indices, method, layer, side, count, opacity, model) -> tuple:
        """(gallery, summary, indices of those shown) for the test images at `indices` of the model's map."""
        served, mapped = self._map_of(model)
        check_shown(method, layer, side, count, opacity)
        shown = mapped.chosen(indices, count)
        summary = self._summary(served, mapped, indices, len(shown))
        if served.test_set is None:
            return [], summary + "\n\nStart the app with `--test-set` to see these images and their heatmaps.", \
                shown.tolist()
        pictures, _ = gallery(served, shown, method, layer, side, opacity) if len(shown) else ([], None)
        return pictures, summary, shown.tolist()

    def _summary(self, served, mapped, indices, shown: int) -> str:
        if not len(indices):
            return "No test image lies in that area: paint over some points."
        classes = served.classes

        def mix(values) -> str:
            counts = np.bincount(values, minlength=len(classes))
            top = np.argsort(-counts)[:3]
            return ", ".join(f"{classes[c]} {counts[c] / len(values):.0%}" for c in top if counts[c])

        wrong = mapped.predicted[indices] != mapped.labels[indices]
        text = (f"**{len(indices)} test images** in the area ({shown} shown, mistakes first): {wrong.sum()} wrong "
                f"({wrong.mean():.0%}; {(mapped.predicted != mapped.labels).mean():.1%} over the whole test "
                f"set). True classes: {mix(mapped.labels[indices])}. Predicted: {mix(mapped.predicted[indices])}. "
                f"Mean calibrated confidence {mapped.confidence[indices].mean():.0%}.")
        other = self._other(served.name)
        if other is not None:
            differ = self.maps[other].predicted[indices] != mapped.predicted[indices]
            text += f" {other} answers otherwise on {differ.sum()} of them ({differ.mean():.0%})."
        return text

    @endpoint(BY_METHOD)
    def map_area(self, x_min: float, x_max: float, y_min: float, y_max: float, method: str = DEFAULT_METHOD,
                 layer: str = DEFAULT_LAYER, side: str = "predicted", count: float = 25, opacity: float = 0.5,
                 model: str | None = None):
        """The test images inside a rectangle of the map (its coordinates: /test_map's axes, see the model's
        metrics.json "test_map"), mistakes first: a gallery with their heatmaps, captioned; a summary of the area
        (how many, how many wrong, the classes there, the other model's disagreements); the indices of those shown."""
        _, mapped = self._map_of(model)
        return self._area(mapped.map.in_area(x_min, x_max, y_min, y_max), method, layer, side, count, opacity, model)

    @endpoint(BY_METHOD)
    def map_export(self, x_min: float, x_max: float, y_min: float, y_max: float, method: str = DEFAULT_METHOD,
                   layer: str = DEFAULT_LAYER, side: str = "predicted", count: float = 25, opacity: float = 0.5,
                   model: str | None = None) -> str:
        """What map_area shows, as the Test set tab's ZIP: images, heatmaps (PNG and .npy), index.csv and
        manifest.json (model, method, layer, TTA, the area, versions)."""
        return self._export(lambda mapped: mapped.map.in_area(x_min, x_max, y_min, y_max),
                            {"area": [x_min, x_max, y_min, y_max]}, method, layer, side, count, opacity, model)

    def _export(self, select, described: dict, method, layer, side, count, opacity, model) -> str:
        served, mapped = self._map_of(model)
        if served.test_set is None:
            raise gr.Error("Exporting the pictures needs the test set: start the app with --test-set.")
        check_shown(method, layer, side, count, opacity)
        shown = mapped.chosen(select(mapped), count)
        return export_file(served, shown, method, layer, side,
                           {**described, "order": "mistakes first, then test-set order", "count": int(count),
                            "exported": len(shown)})

    # -- The page's own: the painted area ---------------------------------------------------------------------------
    @endpoint(BY_METHOD, api=False)
    def show_painted(self, editor, method, layer, side, count, opacity, model=None):
        """The page's button: the test images under the strokes painted on the map."""
        _, mapped = self._map_of(model)
        return self._area(mapped.map.under(painted_area(editor)), method, layer, side, count, opacity, model)

    @endpoint(BY_METHOD, api=False)
    def export_painted(self, editor, method, layer, side, count, opacity, model=None) -> str:
        """The page's export button: what show_painted shows, as a ZIP."""
        return self._export(lambda mapped: mapped.map.under(painted_area(editor)), {"area": "painted on the page"},
                            method, layer, side, count, opacity, model)

    @endpoint(None, api=False)
    def paint_on(self, colour_by, model=None) -> dict:
        """The map, put in the editor to paint on."""
        drawn = self.test_map(colour_by, model)
        return {"background": drawn, "layers": [], "composite": drawn}

    def build(self, page, picture) -> None:
        """The tab's controls and events (inside the page's Blocks); without a map, how to make one."""
        if self.models.default not in self.maps:
            gr.Markdown(NEEDS_A_MAP)
            return
        several = len(self.maps) > 1
        gr.Markdown("Each point is a test image, placed by what the model sees in it (its penultimate features, "
                    "reduced to 2-D by UMAP): images it sees alike lie close together. Paint over an area (or one "
                    "point) and press *Show* to see those images with their heatmaps, mistakes first."
                    + ("" if self.models.first.test_set is not None else
                       " The pictures need the test set: start the app with `--test-set`."))
        colour_by = gr.Radio(list(COLOURINGS if several else COLOURINGS[:4]), value=COLOURINGS[0], label="Colour by",
                             elem_id="map-colouring")
        with gr.Row():
            with gr.Column(scale=3):
                editor = gr.ImageEditor(value=self.paint_on(COLOURINGS[0]), label="The test set: paint an area",
                                        type="numpy", sources=(), layers=False, transforms=(), height=MAP_SIZE,
                                        canvas_size=(MAP_SIZE, MAP_SIZE), elem_id="map-paint",
                                        brush=gr.Brush(colors=["rgba(0, 0, 0, 0.4)"], default_size=12))
            with gr.Column(scale=2):
                method = gr.Dropdown(list(METHODS), value=DEFAULT_METHOD, label="Method")
                layer = gr.Dropdown(list(LAYERS), value=DEFAULT_LAYER, label="Layer")
                side = gr.Radio(list(MISTAKE_SIDES), value="predicted", label="Heatmap for the")
                count = gr.Slider(1, MOST_SHOWN["quick"], value=25, step=1, label="How many")
                show = gr.Button("Show the painted area", variant="primary", elem_id="map-show")
                export = gr.Button("Export them (ZIP)")
                archive = gr.File(label="Exported area", elem_id="map-export", height=120)
        summary = gr.Markdown(elem_id="map-summary")
        shown = gr.Gallery(label="Test images in the area: #index true → predicted (confidence)", columns=6,
                           height="auto", elem_id="map-gallery")
        indices = gr.JSON(visible=False)
        drawn = gr.Image(visible=False)
        endpoints = page.endpoints
        endpoints.api("test_map", [colour_by, page.model], drawn)
        corners = [gr.Number(visible=False) for _ in range(4)]
        heatmaps = [method, layer, side, count, picture.opacity, page.model]
        endpoints.api("map_area", [*corners, *heatmaps], [shown, summary, indices])
        endpoints.api("map_export", [*corners, *heatmaps], archive)
        endpoints.on(show.click, "show_painted", [editor, *heatmaps], [shown, summary, indices])
        endpoints.on(export.click, "export_painted", [editor, *heatmaps], archive)
        for change in (colour_by.change, page.model.change):
            endpoints.on(change, "paint_on", [colour_by, page.model], editor)


def painted_area(editor) -> np.ndarray:
    """The strokes painted on the map, as one mask of its size (none painted: a message)."""
    mask = painted_mask(editor)
    if mask is None or not mask.any():
        raise gr.Error("Paint over an area of the map first (the brush), then press Show.")
    return mask
