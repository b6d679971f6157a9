"""The Compare tab: the picture, layer, method and class chosen on Predict & explain, seen two other ways: why the
predicted class and not another (/contrast), and every method side by side, most faithful first (/compare_methods).
"""

import gradio as gr
import numpy as np

from cifar.engine.explainer import CLASS_AGNOSTIC, DEFAULT_LAYER, DEFAULT_METHOD
from cifar.engine.cam import METHODS
from cifar.engine.pictures import overlay
from cifar.page.controls import PREDICTED, RUNNER_UP, check_heatmap, class_index, model_input
from cifar.page.endpoints import BY_METHOD, COSTLY, endpoint
from cifar.page.image_files import image_file
from cifar.page.served import ServedModels

FIRST = "Upload a picture (or click an example) on **Predict & explain** first."


class CompareTab:
    def __init__(self, models: ServedModels):
        self.models = models

    @endpoint(BY_METHOD)
    def contrast(self, image, other: str = RUNNER_UP, layer: str = DEFAULT_LAYER, method: str = DEFAULT_METHOD,
                 opacity: float = 0.5, model: str | None = None):
        """Why the predicted class and not `other` (default: the runner-up): the heatmap for each, and the map of
        what makes the model prefer the first (its logit minus the other's), each with its ROAD score."""
        served = self.models[model]
        check_heatmap(served.classes, layer, method, PREDICTED, opacity)
        if method in CLASS_AGNOSTIC:
            raise gr.Error(f"{method} shows the same map for every class: choose another method to contrast classes.")
        asked_for = class_index(other, served.classes, RUNNER_UP)
        small, display = model_input(image)
        chances = served.explainer.probabilities(small)  # the plain forward the heatmaps explain (the label may use TTA)
        predicted, runner_up = np.argsort(-chances, kind="stable")[:2].tolist()
        rival = runner_up if asked_for is None else asked_for
        if rival == predicted:
            raise gr.Error(f"The model predicts {other} itself: choose another class to contrast it with.")
        asked = [(predicted, None), (rival, None), (predicted, rival)]  # (target, contrast) of each map
        maps = [served.explainer.explain(small, (layer,), method, t, c).maps[layer] for t, c in asked]
        scores = [float(served.explainer.faithfulness(small, (layer,), method, t, c).score[0]) for t, c in asked]
        a, b = served.classes[predicted], served.classes[rival]
        captions = [f"evidence for {a} · ROAD {scores[0]:+.2f}", f"evidence for {b} · ROAD {scores[1]:+.2f}",
                    f"{a} rather than {b} · ROAD {scores[2]:+.2f}"]
        gallery = [(image_file(overlay(display, cam, opacity)), caption) for cam, caption in zip(maps, captions)]
        text = (f"The model says **{a}** ({chances[predicted]:.0%}) rather than **{b}** ({chances[rival]:.0%}). "
                f"Left: where {method} at `{layer}` finds evidence for {a}; middle: for {b}; right: what makes the "
                f"model prefer {a} to {b} ({method} of the {a} logit minus the {b} logit). Each ROAD score is for the "
                f"class its map explains ({a} for the right one).")
        return gallery, text

    @endpoint(COSTLY)  # every method, the costly ones among them
    def compare_methods(self, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED, opacity: float = 0.5,
                        model: str | None = None):
        """Every method's heatmap at `layer` for one image and class, most faithful (ROAD) first."""
        served = self.models[model]
        target_class = check_heatmap(served.classes, layer, DEFAULT_METHOD, target, opacity)
        small, display = model_input(image)
        maps = {name: served.explainer.explain(small, (layer,), name, target_class) for name in METHODS}
        scores = {name: float(served.explainer.faithfulness(small, (layer,), name, target_class).score[0])
                  for name in METHODS}
        order = sorted(METHODS, key=lambda name: -scores[name])  # stable: ties keep the methods' order
        gallery = [(image_file(overlay(display, maps[name].maps[layer], opacity)), f"{name} · ROAD {scores[name]:+.2f}")
                   for name in order]
        shown = maps[DEFAULT_METHOD].explained_class
        text = (f"Every method at `{layer}` for **{served.classes[shown]}**, the most faithful to the model first "
                "(ROAD: higher is more faithful, random maps score about 0).")
        return gallery, text

    @endpoint(COSTLY, api=False)
    def show_both(self, image, other, layer, target, method, opacity, model=None):
        """The tab opened: the contrast first (milliseconds), then every method (seconds with the costly ones).
        Outputs: the contrast's gallery and text, every method's gallery and text."""
        if image is None:
            yield [], FIRST, [], ""
            return
        if method in CLASS_AGNOSTIC:
            contrast = [], f"{method} shows the same map for every class: choose another method to contrast classes."
        else:
            contrast = self.contrast(image, other, layer, method, opacity, model)
        yield *contrast, gr.skip(), gr.skip()
        yield *contrast, *self.compare_methods(image, layer, target, opacity, model)  # sent again: see predict.SKIP

    def build(self, page, picture, tab: gr.Tab) -> None:
        """The tab's controls and events (inside the page's Blocks), on the Predict tab's picture and controls."""
        classes, endpoints, model = self.models.first.classes, page.endpoints, page.model
        gr.Markdown("The picture, layer, method and class chosen on **Predict & explain**, seen another way. "
                    "Each heatmap carries its ROAD faithfulness score (higher is more faithful to the model; "
                    "random maps score about 0).")
        with gr.Row():
            rival = gr.Dropdown([RUNNER_UP] + classes, value=RUNNER_UP, label="Why the prediction and not")
            contrast_button = gr.Button("Contrast", variant="primary")
        contrast_text = gr.Markdown()
        contrast_gallery = gr.Gallery(label="Predicted class · other class · what separates them", columns=3,
                                      height="auto", elem_id="contrast")
        compare_button = gr.Button("Every method, side by side")
        compare_text = gr.Markdown()
        compare_gallery = gr.Gallery(label="Every method, most faithful first", columns=len(METHODS),
                                     height="auto", elem_id="all-methods")
        image, layer, target, method, opacity = (picture.image, picture.layer, picture.target, picture.method,
                                                 picture.opacity)
        contrast_inputs = [image, rival, layer, method, opacity, model]
        compare_inputs = [image, layer, target, opacity, model]
        endpoints.api("contrast", contrast_inputs, [contrast_gallery, contrast_text])
        endpoints.api("compare_methods", compare_inputs, [compare_gallery, compare_text])
        endpoints.on(contrast_button.click, "contrast", contrast_inputs, [contrast_gallery, contrast_text])
        endpoints.on(compare_button.click, "compare_methods", compare_inputs, [compare_gallery, compare_text])
        endpoints.on(tab.select, "show_both", [image, rival, layer, target, method, opacity, model],
                     [contrast_gallery, contrast_text, compare_gallery, compare_text])
