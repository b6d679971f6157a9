"""The Gradio demo: the page, its tabs and how their controls reach the handlers (cifar/page/handlers.py), each of
which is also a named API endpoint.
"""

import copy
import threading

import gradio as gr

from cifar.page.tabs.test_set import BrowseHandlers, build_tab as build_test_set_tab
from cifar.page.tabs.corruptions import build_tab as build_corruption_tab
from cifar.device import device_name, gpu_task, model_device, on_zero_gpu
from cifar.engine.explainer import DEFAULT_LAYER, DEFAULT_METHOD, GALLERY_LAYER, GALLERY_METHOD, LAYERS
from cifar.engine.gradcam import METHODS
from cifar.page.handlers import ALL, MAX_GALLERY, METHOD_COSTS, PREDICTED, RUNNER_UP, Handlers
from cifar.engine.pictures import DISPLAY_SIZE
from cifar.page.image_files import CACHE_SECONDS
from cifar.runs.folder import Run
from cifar.page.run_views import faithfulness_view, model_card_text, model_summary, training_view
from cifar.page.served import OnePerModel, Served
from cifar.page.tabs.side_by_side import build_tab as build_models_tab
from cifar.dataset import read_test_set

# Chosen for a 2-core CPU: 4 requests run at once (most take milliseconds of model time, a Score-CAM seconds), up
# to 64 wait, more are turned away with a "queue full" message instead of piling up.
CONCURRENCY_LIMIT = 4
# The most GPU time a handler asks for on a ZeroGPU Space (the platform's default is 60 s): see build_demo.
GPU_SECONDS = {"quick": 15, "Score-CAM": 45}
QUEUE_SIZE = 64
MAX_UPLOAD = "10mb"  # a photo is well under; anything larger is refused before it reaches us
# Gradio draws an uploaded image no larger than its own size: a 32x32 CIFAR picture (every example)
# would be a stamp in a 256-pixel box. Fit it to the box instead, as the outputs are.
CSS = "#input-image img { object-fit: contain; }"


class UploadedImage(gr.Image):
    """gr.Image that hands the handler the uploaded file itself, undecoded, so that every bad upload
    (not an image, truncated, a decompression bomb) gets our message instead of a preprocessing error."""

    is_template = True  # the browser side is the ordinary Image component

    def preprocess(self, payload):
        if payload is None or payload.path is None:
            return super().preprocess(payload)  # data: URLs from the clipboard
        return payload.path


def calibration_switch(handlers: Handlers) -> dict:
    """The calibrated/raw switch's settings for a model: its note, and greyed out where it has no temperature."""
    return {"info": handlers.calibration_note(), "interactive": handlers.temperature is not None}


def launch(demo: gr.Blocks, **options):
    """Queue and launch with the app's limits (app.py, the tests and the benchmarks all use this)."""
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_SIZE)
    return demo.launch(max_file_size=MAX_UPLOAD, show_error=True, css=CSS, **options)


class ExampleAnswers:
    """The example click's handler: (the example, its prediction, heatmap, strip and caption). The examples are the
    same for every visitor and their most common first click, so their answers at the page's default controls (and
    the scores that follow, which the engine remembers) are computed once, in the background from start-up: start-up
    does not wait, and a click before they are ready computes its own. Not on ZeroGPU, which attaches a GPU to
    requests only."""

    # top-k, layer, target, method, opacity, calibrated; the ROAD scores that follow depend on layer, target, method.
    DEFAULTS, SCORED = (3, DEFAULT_LAYER, PREDICTED, DEFAULT_METHOD, 0.5, True), slice(1, 4)

    def __init__(self, models: Served, examples: list, analyze):
        """`analyze`: the page's, routed to the model a click names (cifar/page/served.py); the default model's answers are
        the ones computed ahead."""
        self.examples, self.analyze, self.ready = examples, analyze, {}
        self.default, self.model = models.default, models[models.default]
        # Not a daemon: a process that exits (Ctrl-C) while it runs waits the few seconds it has left, where a daemon
        # thread would be killed inside torch (the process then aborts).
        self.thread = threading.Thread(target=self._precompute, name="example-answers")
        if examples and not on_zero_gpu():
            self.thread.start()

    def _precompute(self):
        for index, path in enumerate(self.examples):  # the clicks' answers first (about 1 s for the ten)...
            self.ready[index] = self.model.analyze(path, *self.DEFAULTS)
        for path in self.examples:  # ...then the scores that follow them (about 8 s)
            self.model.refresh_faithfulness(path, *self.DEFAULTS[self.SCORED])

    def __call__(self, index, *controls_and_model):
        *controls, model = controls_and_model
        if tuple(controls) == self.DEFAULTS and model == self.default and index in self.ready:
            return self.examples[index], *copy.deepcopy(self.ready[index])  # Gradio consumes the update it is given
        return self.examples[index], *self.analyze(self.examples[index], *controls, model)


def build_demo(runs: dict | Run, examples: list | None = None, tta: str | None = None, test_set=None) -> gr.Blocks:
    """The page for `runs` ({name: run}, the first chosen by default; or one run alone); `test_set` (test.npz, or a
    folder with one), when given, is browsed on its own tab."""
    runs = runs if isinstance(runs, dict) else {runs.path.name: runs}
    models = Served({name: Handlers(run, tta) for name, run in runs.items()})
    arrays = test_set and read_test_set(test_set)  # once, whatever the number of models
    browsers = test_set and Served({name: BrowseHandlers.for_run(run, models[name].explainer, models[name].tta,
                                                                 models[name].temperature, arrays)
                                    for name, run in runs.items()})
    # The handlers that run the model: on a ZeroGPU Space each call holds a GPU for at most the seconds given
    # (cifar/device.py). Both bounds are this 2-core CPU's own times with room to spare (a GPU only shortens
    # them): a prediction, a gradient heatmap or a ROAD score takes well under a second, Score-CAM (a forward
    # pass per channel) up to 12 s with its strip and scores, every method side by side about 15 s.
    quick = GPU_SECONDS["quick"]

    def may_run_score_cam(*args, **kwargs):  # called with the handler's own arguments
        return GPU_SECONDS["Score-CAM"] if "Score-CAM" in (*args, *kwargs.values()) else quick

    def method_task(handler):  # a handler whose arguments name a method: the tabs built in their own modules
        return gpu_task(handler, may_run_score_cam)

    # Each takes the model's name last (cifar/page/served.py).
    (predict, refresh_prediction, explain, analyze, refresh_explanation, refresh_heatmap, refresh_strip, faithfulness,
     refresh_faithfulness, contrast, refresh_contrast, compare_methods, refresh_compare_methods, misclassified,
     mistake_evidence) = (gpu_task(models.route(name), seconds) for name, seconds in (
        ("predict", quick), ("refresh_prediction", quick), ("explain", may_run_score_cam),
        ("analyze", may_run_score_cam), ("refresh_explanation", may_run_score_cam),
        ("refresh_heatmap", may_run_score_cam), ("refresh_strip", may_run_score_cam),
        ("faithfulness", may_run_score_cam), ("refresh_faithfulness", may_run_score_cam),
        ("contrast", may_run_score_cam), ("refresh_contrast", may_run_score_cam),
        ("compare_methods", GPU_SECONDS["Score-CAM"]), ("refresh_compare_methods", GPU_SECONDS["Score-CAM"]),
        ("misclassified", quick), ("mistake_evidence", quick)))
    example_click = ExampleAnswers(models, examples or [], analyze)
    first = runs[models.default]
    classes = first.classes
    shown = OnePerModel(models.names)
    with gr.Blocks(title="CIFAR-10 ResNet-18 + Grad-CAM", delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as demo:
        gr.Markdown(f"# CIFAR-10 ResNet-18 + Grad-CAM\nResNet-18s trained on CIFAR-10. Upload a picture of one of: "
                    f"{', '.join(classes)}; see what the model predicts and where it looked. "
                    f"Computing on: **{device_name(model_device(first.model))}**.", elem_id="header")
        # The model every tab answers with; hidden when there is only one.
        model = gr.Dropdown(models.names, value=models.default, label="Model", visible=len(models.names) > 1,
                            elem_id="model-choice")
        for name in shown.each():
            gr.Markdown(model_summary(name, runs[name], models[name].test_accuracy), elem_id=shown.id("model-summary", name))
        with gr.Tab("Predict & explain"):
            with gr.Row():
                with gr.Column():
                    image = UploadedImage(label="Your image", type="pil", image_mode=None, elem_id="input-image",
                                          sources=["upload", "clipboard", "webcam"], height=DISPLAY_SIZE)
                    top_k = gr.Slider(1, len(classes), value=3, step=1, label="Top-k classes")
                    # Ticked even where there is no temperature (then greyed out): the raw softmax is the same.
                    calibrated = gr.Checkbox(value=True, label="Calibrated confidence", elem_id="calibrated",
                                             **calibration_switch(models.first))
                    classify = gr.Button("Classify", variant="primary")
                    examples_slot = gr.Column()
                with gr.Column():
                    label = gr.Label(label="Prediction", elem_id="prediction")
                    model_view = gr.Image(label="What the model saw (32x32)", height=DISPLAY_SIZE, interactive=False)
            with gr.Row():
                with gr.Column():
                    layer = gr.Dropdown(list(LAYERS), value=DEFAULT_LAYER, label="Target layer", elem_id="target-layer")
                    target = gr.Dropdown([PREDICTED] + classes, value=PREDICTED, label="Target class")
                    method = gr.Radio(list(METHODS), value=DEFAULT_METHOD, label="Method", info=METHOD_COSTS)
                    opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Heatmap opacity")
                with gr.Column():
                    caption = gr.Markdown(elem_id="caption")
                    heatmap = gr.Image(label=f"{DEFAULT_METHOD} at {DEFAULT_LAYER}", height=DISPLAY_SIZE,
                                       interactive=False, elem_id="heatmap")
                    score = gr.Markdown(elem_id="faithfulness")
                    scores = gr.JSON(visible=False)
            strip = gr.Gallery(label="Across the four stages (layer1 → layer4)", columns=4, height=300, elem_id="stages")
            explain_inputs = [image, layer, target, method, opacity, model]
            score_inputs, score_outputs = [image, layer, target, method, model], [score, scores]
            # Each step shows as soon as it is ready: the heatmap with the strip of the four stages (for Score-CAM,
            # seconds each: the heatmap first, then the strip), then the ROAD scores (8 masked forward passes a map).
            prediction_inputs = [image, top_k, calibrated, model]
            classify.click(predict, prediction_inputs, [label, model_view], api_name="predict").then(
                explain, explain_inputs, [heatmap, strip, caption], api_name="explain").then(
                faithfulness, score_inputs, score_outputs, api_name="faithfulness")
            analyze_inputs = [image, top_k, layer, target, method, opacity, calibrated, model]
            calibrated.change(refresh_prediction, prediction_inputs, label, api_visibility="private")
            analyze_outputs = [label, model_view, heatmap, strip, caption]

            def then_strip_and_scores(event):
                return event.then(refresh_strip, explain_inputs, strip, api_visibility="private").then(
                    refresh_faithfulness, score_inputs, score_outputs, api_visibility="private")

            then_strip_and_scores(image.upload(analyze, analyze_inputs, analyze_outputs, api_visibility="private"))
            if examples:
                with examples_slot:
                    example_choice = gr.Dataset(components=[image], samples=[[path] for path in examples], type="index",
                                                label="Examples (CIFAR-10 test images): click one")
                # One event brings the example, its prediction and its heatmap: gr.Examples would put the example
                # in the input first and explain it in a second round trip (~100 ms more, BENCHMARKS.md).
                then_strip_and_scores(example_choice.click(example_click, [example_choice] + analyze_inputs[1:],
                                                           [image] + analyze_outputs, api_visibility="private"))
            # A new layer changes the heatmap only: the strip shows the four stages whichever layer is chosen.
            layer.change(refresh_heatmap, explain_inputs, [heatmap, caption], api_visibility="private").then(
                refresh_faithfulness, score_inputs, score_outputs, api_visibility="private")
            for control in (target, method):
                then_strip_and_scores(control.change(refresh_explanation, explain_inputs, [heatmap, strip, caption],
                                                     api_visibility="private"))
            opacity.change(refresh_explanation, explain_inputs, [heatmap, strip, caption], api_visibility="private").then(
                refresh_strip, explain_inputs, strip, api_visibility="private")
            # Another model: its own calibration, then its answers for the same picture and controls.
            then_strip_and_scores(model.change(
                lambda name: gr.Checkbox(**calibration_switch(models[name])), model, calibrated,
                api_visibility="private").then(
                refresh_prediction, prediction_inputs, label, api_visibility="private").then(
                refresh_explanation, explain_inputs, [heatmap, strip, caption], api_visibility="private"))
        with gr.Tab("Compare") as compare_tab:
            gr.Markdown("The picture, layer, method and class chosen on **Predict & explain**, seen another way. "
                        "Each heatmap carries its ROAD faithfulness score (higher is more faithful to the model; "
                        "random maps score about 0).")
            with gr.Row():
                rival = gr.Dropdown([RUNNER_UP] + classes, value=RUNNER_UP, label="Why the prediction and not")
                contrast_button = gr.Button("Contrast", variant="primary")
            contrast_text = gr.Markdown()
            contrast_gallery = gr.Gallery(label="Predicted class · other class · what separates them", columns=3,
                                          height="auto", elem_id="contrast")
            contrast_inputs = [image, rival, layer, method, opacity, model]
            contrast_outputs = [contrast_gallery, contrast_text]
            contrast_button.click(contrast, contrast_inputs, contrast_outputs, api_name="contrast")
            compare_button = gr.Button("Every method, side by side")
            compare_text = gr.Markdown()
            compare_gallery = gr.Gallery(label="Every method, most faithful first", columns=len(METHODS),
                                         height="auto", elem_id="all-methods")
            compare_inputs, compare_outputs = [image, layer, target, opacity, model], [compare_gallery, compare_text]
            compare_button.click(compare_methods, compare_inputs, compare_outputs, api_name="compare_methods")
            # Opening the tab shows both for the current picture: the contrast first (milliseconds), then every method
            # (Score-CAM among them: seconds).
            compare_tab.select(refresh_contrast, contrast_inputs, contrast_outputs, api_visibility="private").then(
                refresh_compare_methods, compare_inputs, compare_outputs, api_visibility="private")
        with gr.Tab("Corruptions"):
            build_corruption_tab(models, image, layer, method, opacity, method_task,
                                 any("corruptions" in run.metrics for run in runs.values()))
        if len(models.names) > 1:
            with gr.Tab("Models side by side") as models_tab:
                build_models_tab(models, models_tab, image, layer, target, method, opacity, method_task)
        with gr.Tab("Training"):
            for name in shown.each():
                training_view(runs[name], shown, name)
        with gr.Tab("Misclassified"):
            with gr.Row():
                count = gr.Slider(1, MAX_GALLERY, value=25, step=1, label="How many", elem_id="mistake-count")
                true_class = gr.Dropdown([ALL] + classes, value=ALL, label="True class")
                predicted_class = gr.Dropdown([ALL] + classes, value=ALL, label="Predicted class")
                with_gradcam = gr.Checkbox(label=f"{GALLERY_METHOD} overlay ({GALLERY_LAYER}) with its ROAD score",
                                           elem_id="gradcam-overlay")
            summary = gr.Markdown()
            gallery = gr.Gallery(label="Misclassified test images: true → predicted (confidence), most confident first", columns=5,
                                 height="auto", elem_id="misclassified")
            gallery_inputs = [count, true_class, predicted_class, with_gradcam, opacity, model]
            show = gr.Button("Show")
            show.click(misclassified, gallery_inputs, [gallery, summary], api_name="misclassified")
            for control in (count, true_class, predicted_class, with_gradcam, model):
                control.change(misclassified, gallery_inputs, [gallery, summary], api_visibility="private")
            demo.load(misclassified, gallery_inputs, [gallery, summary], api_visibility="private")
            evidence_button = gr.Button("Evidence: predicted class beside true class")
            evidence_text = gr.Markdown()
            evidence_gallery = gr.Gallery(label=f"{GALLERY_METHOD} ({GALLERY_LAYER}) for the predicted class · for the true class",
                                          columns=4, height="auto", elem_id="mistake-evidence")
            evidence_button.click(mistake_evidence, [count, true_class, predicted_class, opacity, model],
                                  [evidence_gallery, evidence_text], api_name="mistake_evidence")
        with gr.Tab("Test set"):
            build_test_set_tab(browsers, runs, shown, model, method_task, opacity)
        with gr.Tab("Faithfulness"):
            for name in shown.each():
                faithfulness_view(runs[name], shown, name)
        with gr.Tab("Model card"):
            for name in shown.each():
                gr.Markdown(model_card_text(runs[name]))
        shown.follow(model)
    return demo
