"""The Gradio demo: every tab, and the functions behind it (each one also a named API endpoint).

All the heavy lifting is done once, at start-up, from the run folder: the model is loaded once, the
curves and confusion matrix are the run's PNGs, the misclassified set is the run's npz. A request
only runs the model on its own image.
"""

import hashlib
import io
import itertools
import os
import re
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image

from .device import device_name, gpu_task, model_device
from .evaluate import check_tta
from .gradcam import DEFAULT_LAYER, LAYERS, METHODS, STAGE_LAYERS, overlay
from .inference import DISPLAY_SIZE, BadImage, enlarge, image_tensor, load_image, prepare, probabilities
from .run_folder import Run
from .training import atomic_write

PREDICTED = "predicted class"
# Methods whose map does not depend on the class asked for, and why (the caption says so).
CLASS_AGNOSTIC = {"Eigen-CAM": "the main pattern of the layer's activations, no gradients"}
# What each method costs and means, shown under the method choice.
METHOD_COSTS = ("Each is one forward and one backward pass for all layers (a few ms), except Score-CAM: one forward "
                "pass per channel (512 at layer4), about 5 s at layer4 and 12 s with the strip below on a 2-core CPU. "
                "Eigen-CAM needs no backward pass, and shows the same map for every class.")
ALL = "all"
MAX_GALLERY = 100
# Chosen for a 2-core CPU: 4 requests run at once (each takes a few ms of model time), up to 64 wait,
# more are turned away with a "queue full" message instead of piling up.
CONCURRENCY_LIMIT = 4
QUEUE_SIZE = 64
MAX_UPLOAD = "10mb"  # a photo is well under; anything larger is refused before it reaches us
# Gradio draws an uploaded image no larger than its own size: a 32x32 CIFAR picture (every example)
# would be a stamp in a 256-pixel box. Fit it to the box instead, as the outputs are.
CSS = "#input-image img { object-fit: contain; }"


PNG_DIR = Path(tempfile.gettempdir()) / "cifar-demo"
CACHE_SECONDS = 3600  # our PNGs and Gradio's cached copies live an hour
_png_counter = itertools.count(1)


def png_file(image: np.ndarray) -> str:
    """The image as a PNG file named by its content, written atomically.

    Returning arrays lets Gradio write them to its cache with a plain write_bytes on a content-hashed
    path: two users getting the same picture at once could have one rewrite the file while the other
    downloads it (seen as "peer closed connection" under load). A file path goes through Gradio's
    atomic copy instead.
    """
    buffer = io.BytesIO()
    PIL.Image.fromarray(image).save(buffer, format="PNG")
    data = buffer.getvalue()
    path = PNG_DIR / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    try:
        os.utime(path)  # handed out again: keep it out of the next prune
    except FileNotFoundError:
        PNG_DIR.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    if next(_png_counter) % 1000 == 0:
        prune(PNG_DIR, CACHE_SECONDS)
    return str(path)


def prune(folder: Path, max_age: float) -> None:
    """Delete files older than max_age seconds: a public demo must not fill the disk."""
    cutoff = time.time() - max_age
    for old in folder.glob("*.png"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except FileNotFoundError:  # another request pruned it first
            pass


class UploadedImage(gr.Image):
    """gr.Image that hands the handler the uploaded file itself, undecoded, so that every bad upload
    (not an image, truncated, a decompression bomb) gets our message instead of a preprocessing error."""

    is_template = True  # the browser side is the ordinary Image component

    def preprocess(self, payload):
        if payload is None or payload.path is None:
            return super().preprocess(payload)  # data: URLs from the clipboard
        return payload.path


def model_input(image) -> tuple[np.ndarray, np.ndarray]:
    try:
        return prepare(load_image(image))
    except BadImage as error:
        raise gr.Error(str(error)) from None


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

    @property
    def test_accuracy(self) -> float:
        """The test accuracy of what is served: the run's TTA, or plain (the lower figure) for another."""
        metrics = self.run.metrics
        return metrics["test_accuracy_tta"] if self.tta == metrics["tta"] else metrics["test_accuracy"]

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

    def _predict(self, prepared, top_k):
        top_k = int(top_k)
        if not 1 <= top_k <= len(self.classes):
            raise gr.Error(f"top_k must be between 1 and {len(self.classes)}, got {top_k}.")
        small, _ = prepared
        probs = probabilities(self.model, small, self.tta)
        best = np.argsort(-probs)[:top_k]
        return {self.classes[i]: float(probs[i]) for i in best}, png_file(enlarge(small))

    def _explain(self, prepared, layer, target, method, opacity):
        if layer not in LAYERS:
            raise gr.Error(f"Unknown layer {layer!r}: choose one of {', '.join(LAYERS)}.")
        if method not in METHODS:
            raise gr.Error(f"Unknown method {method!r}: choose one of {', '.join(METHODS)}.")
        if target != PREDICTED and target not in self.classes:
            raise gr.Error(f"Unknown class {target!r}: choose '{PREDICTED}' or one of {', '.join(self.classes)}.")
        if not 0 <= opacity <= 1:
            raise gr.Error(f"opacity must be between 0 and 1, got {opacity}.")
        small, display = prepared
        inputs = image_tensor(small)
        target_class = None if target == PREDICTED else self.classes.index(target)
        # Each layer once: the chosen one is usually a stage of the strip too.
        layers = tuple(dict.fromkeys((layer, *STAGE_LAYERS)))
        cams, logits = METHODS[method](self.model, layers)(inputs, target_class)
        maps = dict(zip(layers, cams[0]))
        shown = self.classes[target_class if target_class is not None else int(logits.argmax())]
        heatmap = png_file(overlay(display, maps[layer], opacity))
        strip = [(png_file(overlay(display, maps[stage], opacity)), stage) for stage in STAGE_LAYERS]
        if method in CLASS_AGNOSTIC:
            caption = f"{method} at `{layer}` (the same map for every class: {CLASS_AGNOSTIC[method]})"
        else:
            caption = f"{method} for **{shown}** at `{layer}`"
        if not maps[layer].any():
            caption += (": nothing here counts for this class (the weighted activations are negative everywhere); "
                        "the stage outputs below show where the evidence is")
        return heatmap, strip, caption

    # -- Misclassified ----------------------------------------------------------------------
    def misclassified(self, count: float = 25, true_class: str = ALL, predicted_class: str = ALL,
                      with_gradcam: bool = False, opacity: float = 0.5):
        """Misclassified test images (most confident mistakes first), captioned, optionally with Grad-CAM."""
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
        images = wrong["images"][chosen]
        if with_gradcam and len(chosen):
            cams, _ = METHODS["Grad-CAM"](self.model, DEFAULT_LAYER)(image_tensor(images), None)
        gallery = []
        for n, i in enumerate(chosen):
            picture = enlarge(images[n], 128)
            if with_gradcam:
                picture = overlay(picture, cams[n, 0], opacity)
            caption = (f"{self.classes[wrong['true'][i]]} → {self.classes[wrong['predicted'][i]]} "
                       f"{100 * wrong['confidence'][i]:.0f}%")
            gallery.append((png_file(picture), caption))
        summary = f"{len(chosen)} shown of {int(keep.sum())} matching ({len(keep)} misclassified test images in all)"
        return gallery, summary


def metrics_markdown(run: Run) -> str:
    m, epochs = run.metrics, run.history["epochs"]
    minutes = sum(e["seconds"] for e in epochs) / 60
    return (f"| metric | value |\n|---|---|\n| test accuracy | **{100 * m['test_accuracy']:.2f}%** |\n"
            f"| with {m['tta']} TTA | **{100 * m['test_accuracy_tta']:.2f}%** |\n"
            f"| test loss | {m['test_loss']:.4f} |\n| epochs | {len(epochs)} |\n"
            f"| training time | {minutes:.1f} min on {run.history['device']} |\n")


def per_class_table(run: Run) -> list:
    return [[name, round(100 * acc, 2)] for name, acc in run.metrics["per_class_accuracy"].items()]


def model_card_text(run: Run) -> str:
    card = (run.path / "README.md").read_text() if (run.path / "README.md").exists() else "No model card."
    card = re.sub(r"\A---\n.*?\n---\n", "", card, flags=re.S)  # YAML front matter is for the Hub
    # Images in the card are files of the run folder, shown on the Training tab.
    return re.sub(r"!\[[^\]]*\]\([^)]*\)\n?", "", card)


def launch(demo: gr.Blocks, **options):
    """Queue and launch with the app's limits (app.py, the tests and the benchmarks all use this)."""
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_SIZE)
    return demo.launch(max_file_size=MAX_UPLOAD, show_error=True, css=CSS, **options)


def build_demo(run: Run, examples: list | None = None, tta: str | None = None) -> gr.Blocks:
    demo_fns = Demo(run, tta)
    # The handlers that run the model: on a ZeroGPU Space each call holds a GPU (cifar/device.py).
    predict, explain, analyze, refresh_explanation, misclassified = (gpu_task(handler) for handler in (
        demo_fns.predict, demo_fns.explain, demo_fns.analyze, demo_fns.refresh_explanation, demo_fns.misclassified))
    classes = run.classes
    accuracy = 100 * demo_fns.test_accuracy
    with gr.Blocks(title="CIFAR-10 ResNet-18 + Grad-CAM", delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as demo:
        gr.Markdown(f"# CIFAR-10 ResNet-18 + Grad-CAM\nA ResNet-18 trained from scratch on CIFAR-10 "
                    f"({accuracy:.1f}% test accuracy). Upload a picture of one of: {', '.join(classes)}; "
                    "see what the model predicts and where it looked. "
                    f"Computing on: **{device_name(model_device(run.model))}**.", elem_id="header")
        with gr.Tab("Predict & explain"):
            with gr.Row():
                with gr.Column():
                    image = UploadedImage(label="Your image", type="pil", image_mode=None, elem_id="input-image",
                                          sources=["upload", "clipboard", "webcam"], height=DISPLAY_SIZE)
                    top_k = gr.Slider(1, len(classes), value=3, step=1, label="Top-k classes")
                    classify = gr.Button("Classify", variant="primary")
                    examples_slot = gr.Column()
                with gr.Column():
                    label = gr.Label(label="Prediction", elem_id="prediction")
                    model_view = gr.Image(label="What the model saw (32x32)", height=DISPLAY_SIZE, interactive=False,
                                          format="png")
            with gr.Row():
                with gr.Column():
                    layer = gr.Dropdown(list(LAYERS), value=DEFAULT_LAYER, label="Target layer")
                    target = gr.Dropdown([PREDICTED] + classes, value=PREDICTED, label="Target class")
                    method = gr.Radio(list(METHODS), value="Grad-CAM", label="Method", info=METHOD_COSTS)
                    opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Heatmap opacity")
                with gr.Column():
                    caption = gr.Markdown()
                    heatmap = gr.Image(label="Grad-CAM", height=DISPLAY_SIZE, interactive=False, format="png",
                                       elem_id="heatmap")
            strip = gr.Gallery(label="Across the four stages (layer1 → layer4)", columns=4, height=300, elem_id="stages",
                               format="png")
            explain_inputs = [image, layer, target, method, opacity]
            explain_outputs = [heatmap, strip, caption]
            classify.click(predict, [image, top_k], [label, model_view], api_name="predict").then(
                explain, explain_inputs, explain_outputs, api_name="explain")
            analyze_inputs = [image, top_k, layer, target, method, opacity]
            analyze_outputs = [label, model_view] + explain_outputs
            image.upload(analyze, analyze_inputs, analyze_outputs, api_visibility="private")
            if examples:
                with examples_slot:
                    gallery_of_examples = gr.Examples(examples, inputs=image, api_visibility="private",
                                                      label="Examples (CIFAR-10 test images): click one")
                gallery_of_examples.load_input_event.then(analyze, analyze_inputs, analyze_outputs,
                                                          api_visibility="private")
            for control in (layer, target, method, opacity):
                control.change(refresh_explanation, explain_inputs, explain_outputs, api_visibility="private")
        with gr.Tab("Training"):
            gr.Markdown(metrics_markdown(run))
            with gr.Row():
                gr.Image(str(run.path / "accuracy.png"), label="Accuracy", interactive=False, elem_id="accuracy-curve")
                gr.Image(str(run.path / "loss.png"), label="Loss", interactive=False)
            with gr.Row():
                gr.Dataframe(per_class_table(run), headers=["class", "test accuracy (%)"], label="Per-class accuracy")
                gr.Image(str(run.path / "confusion_matrix.png"), label="Confusion matrix", interactive=False)
        with gr.Tab("Misclassified"):
            with gr.Row():
                count = gr.Slider(1, MAX_GALLERY, value=25, step=1, label="How many")
                true_class = gr.Dropdown([ALL] + classes, value=ALL, label="True class")
                predicted_class = gr.Dropdown([ALL] + classes, value=ALL, label="Predicted class")
                with_gradcam = gr.Checkbox(label=f"Grad-CAM overlay ({DEFAULT_LAYER})")
            summary = gr.Markdown()
            gallery = gr.Gallery(label="Misclassified test images: true → predicted (confidence), most confident first", columns=5,
                                 height="auto", format="png", elem_id="misclassified")
            gallery_inputs = [count, true_class, predicted_class, with_gradcam, opacity]
            show = gr.Button("Show")
            show.click(misclassified, gallery_inputs, [gallery, summary], api_name="misclassified")
            for control in (count, true_class, predicted_class, with_gradcam):
                control.change(misclassified, gallery_inputs, [gallery, summary], api_visibility="private")
            demo.load(misclassified, gallery_inputs, [gallery, summary], api_visibility="private")
        with gr.Tab("Model card"):
            gr.Markdown(model_card_text(run))
    return demo
