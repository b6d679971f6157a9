"""The Predict & explain tab: a picture's top classes (calibrated), the heatmap of any method at any layer for any
class, the strip of the four stages, and how faithful each heatmap is (ROAD). Its endpoints: /predict, /explain and
/faithfulness for API callers; for the page, one request per action that shows each step as soon as it is ready.
"""

import copy
import threading
from dataclasses import dataclass

import gradio as gr
import numpy as np

from cifar.device import on_zero_gpu
from cifar.engine.explainer import (BASELINES, CLASS_AGNOSTIC, COSTLY_METHODS, DEFAULT_LAYER, DEFAULT_METHOD,
                                    LAYER_AGNOSTIC, LAYERS, RANDOM, STAGE_LAYERS)
from cifar.engine.cam import METHODS
from cifar.engine.pictures import DISPLAY_SIZE, enlarge, overlay
from cifar.measure.faithfulness_table import summary
from cifar.page.controls import METHOD_INFO, PREDICTED, UploadedImage, check_between, check_heatmap, model_input
from cifar.page.endpoints import BY_METHOD, QUICK, endpoint
from cifar.page.image_files import image_file
from cifar.page.served import ServedModels

# A step that leaves an output as it is. In a stream, only before the output's first value: a later step sends the value
# again instead (Gradio 6.31 turns a value followed by a skip into a broken value on the page).
SKIP = gr.skip()


@dataclass
class Picture:
    """The tab's picture and heatmap controls, which the Compare, Corruptions and Models tabs answer on too."""

    image: gr.Image
    layer: gr.Dropdown
    target: gr.Dropdown
    method: gr.Radio
    opacity: gr.Slider
    score: gr.Markdown  # the heatmap's ROAD score: its last step, so a change means a new heatmap was scored


def heatmap_layers(layer: str, method: str) -> tuple:
    """The layers computed with the chosen one's heatmap. For a method that costs one pass for any number of layers,
    the strip's four stages too, so the strip and a move between stages reuse them; for a costly one, the chosen layer
    alone, so its heatmap is not kept waiting for the strip."""
    if method in COSTLY_METHODS:
        return (layer,)
    return STAGE_LAYERS if layer in STAGE_LAYERS else (*STAGE_LAYERS, layer)


class PredictTab:
    def __init__(self, models: ServedModels, examples: list | None = None):
        """`examples`: pictures offered under the upload (the first model's answers for them are made ahead)."""
        self.models, self.examples = models, examples or []
        self.example_answers = ExampleAnswers(self, self.examples)

    # -- The API -------------------------------------------------------------------------------------------------
    @endpoint(QUICK)
    def predict(self, image, top_k: float = 3, calibrated: bool = True, model: str | None = None):
        """Top-k class probabilities (calibrated by the run's temperature, or raw), and the 32x32 image the model
        actually saw (enlarged)."""
        return self._prediction(model_input(image), top_k, calibrated, model)

    @endpoint(BY_METHOD)
    def explain(self, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED, method: str = DEFAULT_METHOD,
                opacity: float = 0.5, model: str | None = None):
        """The heatmap of `method` at `layer` for class `target`, a strip across the four stages, and a caption."""
        prepared = model_input(image)
        heatmap, caption = self._heatmap(prepared, layer, target, method, opacity, model)
        return heatmap, self._strip(prepared, layer, target, method, opacity, model), caption

    @endpoint(BY_METHOD)
    def faithfulness(self, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED, method: str = DEFAULT_METHOD,
                     model: str | None = None):
        """The ROAD score of the heatmap /explain shows and of the four in its strip: a sentence for people, and
        {layer: score} for programs."""
        served = self.models[model]
        target_class = check_heatmap(served.classes, layer, method, target)
        small, _ = model_input(image)
        layers = tuple(dict.fromkeys((layer, *STAGE_LAYERS)))
        result = served.explainer.faithfulness(small, layers, method, target_class)
        shown = served.explainer.explain(small, (layer,), method, target_class).explained_class
        scores = {name: float(score) for name, score in zip(layers, result.score)}
        name = served.classes[shown]
        text = (f"**Faithfulness (ROAD): {scores[layer]:+.2f}**: removing the pixels this heatmap marks most relevant "
                f"lowers P({name}) by {result.most_relevant_first[0]:.2f} on average, removing the least relevant "
                f"by {result.least_relevant_first[0]:.2f}. Higher is more faithful; random maps score about 0.")
        text += self._table_line(served, method, layer)
        text += "\n\nStrip: " + " · ".join(f"`{stage}` {scores[stage]:+.2f}" for stage in STAGE_LAYERS)
        return text, scores

    # -- The page: one request per action, each step shown when it is ready ---------------------------------------
    @endpoint(BY_METHOD, api=False)
    def show_all(self, image, top_k, calibrated, layer, target, method, opacity, model=None):
        """A new picture (an upload, a click on Classify) or another model: the prediction, then the heatmap (with its
        strip, unless the method is costly: then the strip follows), then the ROAD scores. Outputs: label, model view,
        heatmap, strip, caption, score text, scores."""
        prepared = model_input(image)  # without a picture: what to do first
        prediction = self._prediction(prepared, top_k, calibrated, model)
        yield *prediction, SKIP, SKIP, SKIP, SKIP, SKIP
        for step in self._explanation_steps(image, prepared, layer, target, method, opacity, model):
            yield *prediction, *step

    @endpoint(BY_METHOD, api=False)
    def show_model(self, image, top_k, calibrated, layer, target, method, opacity, model=None):
        """Another model chosen: show_all for the picture there is; nothing to redo without one."""
        if image is None:
            yield (SKIP,) * 7
        else:
            yield from self.show_all(image, top_k, calibrated, layer, target, method, opacity, model)

    @endpoint(BY_METHOD, api=False)
    def show_example(self, index, top_k, calibrated, layer, target, method, opacity, model=None):
        """An example clicked: the example itself, then show_all's steps for it (made ahead at the page's defaults
        for the first model). Outputs: the picture, then show_all's."""
        path = self.examples[index]
        ready = self.example_answers.ready.get(index)
        if ready and (top_k, calibrated, layer, target, method, opacity) == ExampleAnswers.DEFAULTS and model in (
                None, self.models.default):
            steps = copy.deepcopy(ready)  # Gradio consumes the updates it is given
        else:
            steps = self.show_all(path, top_k, calibrated, layer, target, method, opacity, model)
        for step in steps:
            yield path, *step

    @endpoint(BY_METHOD, api=False)
    def show_explanation(self, image, layer, target, method, opacity, model=None):
        """Another class or method: the heatmap, the strip (after the heatmap for a costly method), the scores.
        Outputs: heatmap, strip, caption, score text, scores."""
        if image is None:
            yield (SKIP,) * 5
            return
        yield from self._explanation_steps(image, model_input(image), layer, target, method, opacity, model)

    @endpoint(BY_METHOD, api=False)
    def show_layer(self, image, layer, target, method, opacity, model=None):
        """Another layer: its heatmap (the strip shows the four stages whichever layer is chosen, so it stays), then
        its scores. Outputs: heatmap, caption, score text, scores."""
        if image is None:
            yield (SKIP,) * 4
            return
        heatmap, caption = self._heatmap(model_input(image), layer, target, method, opacity, model)
        shown = self._labelled(heatmap, layer, method), caption
        yield *shown, SKIP, SKIP
        yield *shown, *self.faithfulness(image, layer, target, method, model)

    @endpoint(BY_METHOD, api=False)
    def redraw(self, image, layer, target, method, opacity, model=None):
        """Another opacity: the heatmap and the strip drawn again (their maps are remembered). Outputs: heatmap,
        strip."""
        if image is None:
            return SKIP, SKIP
        prepared = model_input(image)
        heatmap, _ = self._heatmap(prepared, layer, target, method, opacity, model)
        return self._labelled(heatmap, layer, method), self._strip(prepared, layer, target, method, opacity, model)

    @endpoint(QUICK, api=False)
    def recalibrate(self, image, top_k, calibrated, model=None):
        """The calibrated/raw switch: the prediction alone, redone. Output: label."""
        return SKIP if image is None else self._prediction(model_input(image), top_k, calibrated, model)[0]

    # -- How the answers are drawn --------------------------------------------------------------------------------
    def _explanation_steps(self, image, prepared, layer, target, method, opacity, model):
        """(heatmap, strip, caption, score text, scores) as each is ready: for a costly method the strip, left empty
        with the heatmap, follows it."""
        heatmap, caption = self._heatmap(prepared, layer, target, method, opacity, model)
        heatmap, costly = self._labelled(heatmap, layer, method), method in COSTLY_METHODS
        strip = [] if costly else self._strip(prepared, layer, target, method, opacity, model)
        yield heatmap, strip, caption, SKIP, SKIP
        if costly:
            strip = self._strip(prepared, layer, target, method, opacity, model)
            yield heatmap, strip, caption, SKIP, SKIP
        yield heatmap, strip, caption, *self.faithfulness(image, layer, target, method, model)

    def _prediction(self, prepared, top_k, calibrated, model):
        served = self.models[model]
        check_between("top_k", int(top_k), 1, len(served.classes))
        small, _ = prepared
        probabilities = served.probabilities(small, calibrated)
        best = np.argsort(-probabilities)[:int(top_k)]
        return {served.classes[i]: float(probabilities[i]) for i in best}, image_file(enlarge(small), exact=True)

    def _heatmap(self, prepared, layer, target, method, opacity, model):
        served = self.models[model]
        target_class = check_heatmap(served.classes, layer, method, target, opacity)
        small, display = prepared
        explanation = served.explainer.explain(small, heatmap_layers(layer, method), method, target_class)
        if method in CLASS_AGNOSTIC:
            caption = f"{method} at `{layer}` (the same map for every class: {CLASS_AGNOSTIC[method]})"
        else:
            caption = f"{method} for **{served.classes[explanation.explained_class]}** at `{layer}`"
        if method in LAYER_AGNOSTIC:
            caption += f" (the same map at every layer: {LAYER_AGNOSTIC[method]})"
        if not explanation.maps[layer].any():
            caption += (": nothing here counts for this class (the weighted activations are negative everywhere); "
                        "the stage outputs below show where the evidence is")
        return image_file(overlay(display, explanation.maps[layer], opacity)), caption

    def _strip(self, prepared, layer, target, method, opacity, model):
        served = self.models[model]
        target_class = check_heatmap(served.classes, layer, method, target, opacity)
        small, display = prepared
        maps = served.explainer.explain(small, STAGE_LAYERS, method, target_class).maps
        return [(image_file(overlay(display, maps[stage], opacity)), stage) for stage in STAGE_LAYERS]

    @staticmethod
    def _labelled(heatmap: str, layer: str, method: str):
        """The heatmap, its label on the page naming what it shows (an update: no component is made at request time)."""
        return gr.update(value=heatmap, label=f"{method} at {layer}")

    @staticmethod
    def _table_line(served, method, layer) -> str:
        """How this method and layer do on average, from the run's faithfulness table, when it has the row."""
        table = served.run.faithfulness
        if not table or layer not in table["scores"].get(method, {}):
            return ""
        rows = summary(table)
        mean, error, beaten = rows[method][layer]
        missed = [name.lower() for name in BASELINES if name in rows and layer in rows[name] and name not in beaten]
        verdict = f" (no better than: {', '.join(missed)})" if missed else " (better than every baseline)"
        return (f" Over {len(table['test_indices'])} test images, {method} at `{layer}` averages {mean:+.3f} ± "
                f"{error:.3f}{verdict}; random maps {rows[RANDOM][layer][0]:+.3f}.")

    # -- The tab --------------------------------------------------------------------------------------------------
    def build(self, page) -> Picture:
        """The tab's controls and events (inside the page's Blocks); returns the controls other tabs answer on."""
        classes, endpoints, model = self.models.first.classes, page.endpoints, page.model
        with gr.Row():
            with gr.Column():
                image = UploadedImage(label="Your image", type="pil", image_mode=None, elem_id="input-image",
                                      sources=["upload", "clipboard", "webcam"], height=DISPLAY_SIZE)
                top_k = gr.Slider(1, len(classes), value=3, step=1, label="Top-k classes")
                # Ticked even where there is no temperature (then greyed out): the raw softmax is the same.
                calibrated = gr.Checkbox(value=True, label="Calibrated confidence", elem_id="calibrated",
                                         **calibration_switch(self.models.first))
                classify = gr.Button("Classify", variant="primary")
                examples_slot = gr.Column()
            with gr.Column():
                label = gr.Label(label="Prediction", elem_id="prediction")
                model_view = gr.Image(label="What the model saw (32x32)", height=DISPLAY_SIZE, interactive=False)
        with gr.Row():
            with gr.Column():
                layer = gr.Dropdown(list(LAYERS), value=DEFAULT_LAYER, label="Target layer", elem_id="target-layer")
                target = gr.Dropdown([PREDICTED] + classes, value=PREDICTED, label="Target class")
                method = gr.Radio(list(METHODS), value=DEFAULT_METHOD, label="Method", info=METHOD_INFO)
                opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Heatmap opacity")
            with gr.Column():
                caption = gr.Markdown(elem_id="caption")
                heatmap = gr.Image(label=f"{DEFAULT_METHOD} at {DEFAULT_LAYER}", height=DISPLAY_SIZE,
                                   interactive=False, elem_id="heatmap")
                score = gr.Markdown(elem_id="faithfulness")
                scores = gr.JSON(visible=False)
        strip = gr.Gallery(label="Across the four stages (layer1 → layer4)", columns=4, height=300, elem_id="stages")

        prediction_inputs = [image, top_k, calibrated, model]
        explain_inputs = [image, layer, target, method, opacity, model]
        endpoints.api("predict", prediction_inputs, [label, model_view])
        endpoints.api("explain", explain_inputs, [heatmap, strip, caption])
        endpoints.api("faithfulness", [image, layer, target, method, model], [score, scores])

        everything = [image, top_k, calibrated, layer, target, method, opacity, model]
        all_outputs = [label, model_view, heatmap, strip, caption, score, scores]
        explanation_outputs = [heatmap, strip, caption, score, scores]
        for trigger in (classify.click, image.upload):
            endpoints.on(trigger, "show_all", everything, all_outputs)
        if self.examples:
            with examples_slot:
                choice = gr.Dataset(components=[image], samples=[[path] for path in self.examples], type="index",
                                    label="Examples (CIFAR-10 test images): click one")
            # One event brings the example and everything about it: gr.Examples would put the example in the input
            # first and explain it in a second round trip.
            endpoints.on(choice.click, "show_example", [choice] + everything[1:], [image] + all_outputs)
        endpoints.on(calibrated.change, "recalibrate", prediction_inputs, label)
        endpoints.on(layer.change, "show_layer", explain_inputs, [heatmap, caption, score, scores])
        for control in (target, method):
            endpoints.on(control.change, "show_explanation", explain_inputs, explanation_outputs)
        endpoints.on(opacity.change, "redraw", explain_inputs, [heatmap, strip])
        # Another model: its own calibration switch, then its answers for the same picture and controls.
        switched = model.change(lambda name: gr.Checkbox(**calibration_switch(self.models[name])), model, calibrated,
                                api_visibility="private", queue=False)
        endpoints.on(switched.then, "show_model", everything, all_outputs)
        return Picture(image, layer, target, method, opacity, score)


def calibration_switch(served) -> dict:
    """The calibrated/raw switch's settings for a model: its note, greyed out where it has no temperature."""
    return {"info": served.calibration_note(), "interactive": served.temperature is not None}


class ExampleAnswers:
    """The answers to an example click at the page's default controls. The examples are the same for every visitor and
    their most common first click, so these are computed once, in the background from start-up: start-up does not
    wait, and a click before they are ready computes its own. Not on ZeroGPU, which attaches a GPU to requests only."""

    # top-k, calibrated, layer, target, method, opacity: the page's defaults.
    DEFAULTS = (3, True, DEFAULT_LAYER, PREDICTED, DEFAULT_METHOD, 0.5)

    def __init__(self, tab: PredictTab, examples: list):
        self.tab, self.examples, self.ready = tab, examples, {}
        # Not a daemon: a process that exits (Ctrl-C) while it runs waits the few seconds it has left, where a daemon
        # thread would be killed inside torch (the process then aborts).
        self.thread = threading.Thread(target=self._precompute, name="example-answers")
        if examples and not on_zero_gpu():
            self.thread.start()

    def _precompute(self):
        for index, path in enumerate(self.examples):
            self.ready[index] = list(self.tab.show_all(path, *self.DEFAULTS))
