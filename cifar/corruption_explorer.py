"""The page's Corruptions tab: the current picture under one CIFAR-10-C corruption at every severity (0, the clean
picture, to 5), what the model predicts for each and where its heatmap points, and how far that heatmap moved from
the clean picture's. The handler checks what it is given, asks the engine and renders; /corruption is its endpoint.
"""

from functools import partial

import gradio as gr
import numpy as np

from .corruptions import CORRUPTIONS, SEVERITIES, corrupt
from .explainer import DEFAULT_LAYER, DEFAULT_METHOD
from .handlers import Handlers, model_input
from .inference import enlarge
from .pictures import image_file, overlay
from .sanity import spearman

DEFAULT_CORRUPTION = "gaussian_noise"
PICTURE_SIZE = 128


def explore(handlers: Handlers, image, corruption: str = DEFAULT_CORRUPTION, layer: str = DEFAULT_LAYER,
            method: str = DEFAULT_METHOD, opacity: float = 0.5):
    """The picture at severities 0 to 5 of `corruption`, each captioned with the model's prediction; below, each one's
    heatmap for the class predicted on the clean picture, captioned with its rank correlation to the clean one's."""
    if corruption not in CORRUPTIONS:
        raise gr.Error(f"Unknown corruption {corruption!r}: choose one of {', '.join(CORRUPTIONS)}.")
    handlers.check_controls(layer, method, opacity=opacity)
    small, _ = model_input(image)
    pictures = np.concatenate([small[None], *(corrupt(small[None], corruption, s) for s in SEVERITIES)])
    chances = [handlers.explainer.probabilities(p, handlers.tta, handlers.temperature or 1.0) for p in pictures]
    clean_class = int(chances[0].argmax())
    maps = handlers.explainer.heatmaps(pictures, (layer,), method, clean_class)[0][:, 0]
    similarity = [spearman(maps[0], heatmap) for heatmap in maps]
    classes = handlers.classes
    gallery = [(image_file(enlarge(p, PICTURE_SIZE), exact=True),
                f"severity {s}: {classes[c.argmax()]} {100 * c.max():.0f}%")
               for s, (p, c) in enumerate(zip(pictures, chances))]
    gallery += [(image_file(overlay(enlarge(p, PICTURE_SIZE), heatmap, opacity)),
                 "clean" if s == 0 else f"severity {s}: ρ {similarity[s]:+.2f}")
                for s, (p, heatmap) in enumerate(zip(pictures, maps))]
    kept = sum(int(c.argmax()) == clean_class for c in chances[1:])
    text = (f"**{corruption.replace('_', ' ')}**, severities 0 (clean) to 5, as in CIFAR-10-C. The model keeps "
            f"**{classes[clean_class]}** at {kept} of the {len(SEVERITIES)} severities. Below, {method} at `{layer}` "
            f"for {classes[clean_class]} on each picture, and how much of the clean heatmap's order it keeps "
            "(ρ, the rank correlation: 1 is the same order, 0 none of it).")
    return gallery, text, {"predicted": [classes[c.argmax()] for c in chances], "rank_correlation": similarity}


def refresh(handlers: Handlers, image, corruption, layer, method, opacity):
    """explore, for the tab's controls: with no picture yet, what to do first."""
    if image is None:
        return [], "Upload a picture (or click an example) on **Predict & explain** first.", {}
    return explore(handlers, image, corruption, layer, method, opacity)


def build_tab(handlers: Handlers, image, layer, method, opacity, gpu_task, metrics: dict) -> None:
    """The Corruptions tab's controls and events (inside the page's Blocks), on the Predict tab's picture, layer,
    method and opacity."""
    gr.Markdown("The picture on **Predict & explain**, under one corruption at every severity: what phones and "
                "shrinking to 32x32 do to a photo. How the model does on each over the test set is on the Training tab."
                if "corruptions" in metrics else "The picture on **Predict & explain**, under one corruption at every "
                "severity: what phones and shrinking to 32x32 do to a photo.")
    with gr.Row():
        corruption = gr.Dropdown(list(CORRUPTIONS), value=DEFAULT_CORRUPTION, label="Corruption")
        button = gr.Button("Corrupt", variant="primary")
    text = gr.Markdown(elem_id="corruption-text")
    gallery = gr.Gallery(label="Severity 0 (clean) to 5: the picture and the model's prediction; its heatmap",
                         columns=len(SEVERITIES) + 1, height="auto", elem_id="corruption")
    numbers = gr.JSON(visible=False)
    inputs, outputs = [image, corruption, layer, method, opacity], [gallery, text, numbers]
    button.click(gpu_task(partial(explore, handlers)), inputs, outputs, api_name="corruption")
    corruption.change(gpu_task(partial(refresh, handlers)), inputs, outputs, api_visibility="private")
