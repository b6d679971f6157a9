"""How far to trust a heatmap, on the Predict & explain tab under it: its scores by every cheap faithfulness metric
(/metrics), each with what it rewards; and a test a person runs by hand (/cover): cover part of the picture (the top of
the heatmap, all but its top, or what they painted) and see what the model says then. The covering is ROAD's
(cifar/engine/faithfulness.py: each covered pixel filled in from its neighbours), the test the metric runs.
"""

import gradio as gr
import numpy as np
import PIL.Image

from cifar.engine.explainer import DEFAULT_LAYER, DEFAULT_METHOD, METRICS
from cifar.engine.faithfulness import covered, heatmap_cover
from cifar.engine.pictures import DISPLAY_SIZE, INPUT_SIZE, BadImage, enlarge, load_image, overlay
from cifar.page.controls import (PREDICTED, UploadedImage, check_choice, check_heatmap, model_input,
                                  painted_mask)
from cifar.page.endpoints import BY_METHOD, QUICK, endpoint
from cifar.page.image_files import image_file
from cifar.measure.metrics_table import means
from cifar.page.served import ServedModels

# The coverings offered: the top of the heatmap (ROAD's "most relevant first") or everything but it ("least relevant
# first"), at the shares ROAD's percentiles remove; or what the person painted.
COVERINGS = {"top 10% of the heatmap": (10, True), "top 20% of the heatmap": (20, True),
             "top 40% of the heatmap": (40, True), "everything but the top 20%": (20, False),
             "everything but the top 40%": (40, False)}
PAINTED = "what I painted"
PAINTED_SHARE = 0.25  # a model pixel is covered when a quarter of it is painted: a thin stroke still covers


def painted_cover(painted) -> np.ndarray:
    """(32, 32) bool: the model pixels a painted picture marks (any size, resized to the model's input): painted where
    it is neither transparent nor black. `painted`: a file (the API) or an RGBA array (the page's brush layer)."""
    if painted is None:
        raise gr.Error("Nothing painted: paint over part of the picture first, or choose another covering.")
    if isinstance(painted, np.ndarray):
        picture = PIL.Image.fromarray(painted)
    else:
        try:
            picture = load_image(painted)
        except BadImage as error:
            raise gr.Error(f"The painted mask: {error}") from None
    rgba = np.asarray(picture.convert("RGBA"))
    marked = ((rgba[..., 3] > 0) & (rgba[..., :3].max(2) > 0)).astype(np.float32)
    share = np.asarray(PIL.Image.fromarray(marked).resize((INPUT_SIZE, INPUT_SIZE), PIL.Image.Resampling.BOX))
    return share >= PAINTED_SHARE


class HeatmapTestTab:
    def __init__(self, models: ServedModels):
        self.models = models

    # Quick even for a costly method: on the page its map is remembered from the heatmap's request, and a cold API call
    # computes one map (Score-CAM at layer4: 5 s of a 2-core CPU) and 47 forward passes.
    @endpoint(QUICK)
    def metrics(self, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED, method: str = DEFAULT_METHOD,
                model: str | None = None):
        """The heatmap /explain shows, scored by every cheap faithfulness metric: ROAD, ARCC (not for a costly method:
        it would run the method again), average drop, increase, deletion and insertion. A table saying what each
        rewards, beside the run's average for this method and layer where its metrics table has them; and {metric:
        value}."""
        served = self.models[model]
        target_class = check_heatmap(served.classes, layer, method, target)
        small, _ = model_input(image)
        values = served.explainer.heatmap_metrics(small, layer, method, target_class)
        table = (served.run.faithfulness or {}).get("metrics")
        averages = means(table).get(method, {}).get(layer) if table else None
        heading = f" | {method} at `{layer}`, mean of {len(table['test_indices'])} test pictures" if averages else ""
        lines = [f"| metric | this heatmap{heading} | rewards |", "|---|---|---|" + ("---|" if averages else "")]
        for name, (rewards, higher) in METRICS.items():
            value = "not computed (its coherency would run " + method + " again)" if values[name] is None else (
                f"{values[name]:+.3f}" if name == "ROAD" else f"{values[name]:.3f}")
            average = f" | {averages[name]:.3f}" if averages else ""
            lines.append(f"| {name} {'↑' if higher else '↓'} | {value}{average} | {rewards} |")
        note = ("\n\nEach metric rewards something else, and none alone is proof: the run's table (Faithfulness tab) "
                "shows how far they agree, and the controls (blurred maps, a centre blob) that some of them prefer.")
        return "\n".join(lines) + note, values

    @endpoint(BY_METHOD)
    def cover(self, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED, method: str = DEFAULT_METHOD,
              covering: str = "top 20% of the heatmap", painted=None, opacity: float = 0.5, model: str | None = None):
        """Test a heatmap by hand: cover part of the picture as ROAD does (each covered pixel filled in from its
        neighbours) and ask the model again. `covering`: "top 10%/20%/40% of the heatmap", "everything but the top
        20%/40%", or "what I painted" with `painted`: a picture whose non-black, non-transparent pixels mark what to
        cover (of the square picture the model sees, at any size). Answers: the calibrated top classes for the covered picture, a sentence on what changed, the heatmap
        before and after (for a slider), the covered picture as the model saw it, and {numbers}."""
        served = self.models[model]
        target_class = check_heatmap(served.classes, layer, method, target, opacity)
        check_choice("covering", covering, [*COVERINGS, PAINTED])
        small, _ = model_input(image)
        before = served.explainer.explain(small, (layer,), method, target_class)
        if covering == PAINTED:
            cover = painted_cover(painted)
        elif not before.maps[layer].any():
            raise gr.Error("This heatmap is blank (nothing counts for the class here): there is no top to cover. "
                           "Choose another layer or method, or paint what to cover.")
        else:
            cover = heatmap_cover(before.maps[layer], *COVERINGS[covering])
        try:
            after_image = covered(small, cover)
        except ValueError as error:
            raise gr.Error(f"Nothing to test: {error}.") from None
        explained = before.explained_class
        after = served.explainer.explain(after_image, (layer,), method, explained)  # the same class's map
        p_before, p_after = served.probabilities(small, True), served.probabilities(after_image, True)
        name, new = served.classes[explained], int(np.argmax(p_after))
        top = np.argsort(-p_after)[:3]
        verdict = ("the same answer" if new == int(np.argmax(p_before))
                   else f"it answered {served.classes[int(np.argmax(p_before))]} before")
        text = (f"Covered **{cover.mean():.0%}** of the picture ({covering}), each covered pixel filled in from its "
                f"neighbours as ROAD does. The model now says **{served.classes[new]}** ({p_after[new]:.0%}, "
                f"calibrated; {verdict}). P({name}): {p_before[explained]:.0%} → **{p_after[explained]:.0%}** "
                f"({p_after[explained] - p_before[explained]:+.0%}). A faithful heatmap: covering its top costs the "
                "class much more than covering the same share elsewhere.")
        numbers = {"class": name, "before": float(p_before[explained]), "after": float(p_after[explained]),
                   "prediction_after": served.classes[new], "covered_share": float(cover.mean())}
        slider = (image_file(overlay(enlarge(small), before.maps[layer], opacity)),
                  image_file(overlay(enlarge(after_image), after.maps[layer], opacity)))
        return ({served.classes[i]: float(p_after[i]) for i in top}, text, slider,
                image_file(enlarge(after_image), exact=True), numbers)

    @endpoint(BY_METHOD, api=False)
    def cover_painted(self, image, layer, target, method, covering, editor, opacity, model=None):
        """The page's button: /cover with the brush's strokes (the editor's layers) as the painted mask."""
        mask = painted_mask(editor) if covering == PAINTED else None
        return self.cover(image, layer, target, method, covering, mask, opacity, model)

    @endpoint(None, api=False)
    def paint_here(self, image):
        """The picture, as the model sees it (enlarged), put in the editor to paint on."""
        if image is None:
            raise gr.Error("Choose a picture first (upload one or click an example).")
        small, _ = model_input(image)
        view = enlarge(small)
        return {"background": view, "layers": [], "composite": view}

    def build(self, page, picture) -> None:
        endpoints = page.endpoints
        with gr.Accordion("This heatmap by every faithfulness metric", open=True, elem_id="metrics-section"):
            table = gr.Markdown(elem_id="heatmap-metrics")
            values = gr.JSON(visible=False)
        heatmap_inputs = [picture.image, picture.layer, picture.target, picture.method, page.model]
        endpoints.api("metrics", heatmap_inputs, [table, values])
        # A new heatmap's ROAD score is its last step on the page: its other metrics follow it.
        endpoints.on(picture.score.change, "metrics", heatmap_inputs, [table, values])
        with gr.Accordion("Test the heatmap yourself: cover part of the picture", open=False, elem_id="cover-test"):
            gr.Markdown("Cover what the heatmap points at (or everything else, or paint over anything) and see what the "
                        "model says then. Covered pixels are filled in from their neighbours, the test ROAD runs.")
            with gr.Row():
                with gr.Column():
                    covering = gr.Radio([*COVERINGS, PAINTED], value="top 20% of the heatmap", label="Cover",
                                        elem_id="covering")
                    editor = gr.ImageEditor(label="Paint what to cover (choose \"what I painted\")", type="numpy",
                                            height=DISPLAY_SIZE, sources=(), layers=False, transforms=(),
                                            brush=gr.Brush(colors=["#ff00ff"], default_size=24),
                                            canvas_size=(DISPLAY_SIZE, DISPLAY_SIZE), elem_id="paint")
                    with gr.Row():
                        paint = gr.Button("Paint on this picture")
                        run = gr.Button("Cover and ask again", variant="primary", elem_id="cover-run")
                with gr.Column():
                    answer = gr.Label(label="After covering (calibrated)", elem_id="cover-prediction")
                    text = gr.Markdown(elem_id="cover-text")
                    slider = gr.ImageSlider(label="Heatmap before | after", height=DISPLAY_SIZE, elem_id="cover-slider")
                    seen = gr.Image(label="What the model saw after covering (32x32)", height=DISPLAY_SIZE // 2,
                                    interactive=False, elem_id="cover-seen")
                    numbers = gr.JSON(visible=False)
            mask = UploadedImage(label="Painted mask", type="filepath", visible=False)
        inputs = [picture.image, picture.layer, picture.target, picture.method, covering]
        outputs = [answer, text, slider, seen, numbers]
        endpoints.api("cover", [*inputs, mask, picture.opacity, page.model], outputs)
        endpoints.on(run.click, "cover_painted", [*inputs, editor, picture.opacity, page.model], outputs)
        endpoints.on(paint.click, "paint_here", [picture.image], editor)
