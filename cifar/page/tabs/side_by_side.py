"""The page's Models side by side tab (when it serves more than one): for the picture on Predict & explain, every
model's prediction and its heatmap at the chosen layer, method and class, with the heatmap's ROAD score. The handler
checks what it is given, asks each model's engine and renders; /compare_models is its endpoint.
"""

from functools import partial

import gradio as gr
import numpy as np

from cifar.engine.explainer import DEFAULT_LAYER, DEFAULT_METHOD
from cifar.page.handlers import PREDICTED, model_input
from cifar.page.image_files import image_file
from cifar.engine.pictures import overlay
from cifar.page.served import Served

TOP = 3  # classes listed per model


def compare_models(models: Served, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED,
                   method: str = DEFAULT_METHOD, opacity: float = 0.5):
    """Each model's heatmap (captioned with the class it explains and its ROAD score), a table of each one's top
    classes (calibrated, as the page shows them), and the numbers: each model's probabilities, explained class, ROAD."""
    target_class = models.first.check_controls(layer, method, target, opacity)
    small, display = model_input(image)
    classes = models.first.classes
    gallery, rows, numbers = [], [], {}
    for name in models.names:
        engine, handlers = models[name].explainer, models[name]
        chances = engine.probabilities(small, handlers.tta, handlers.temperature or 1.0)
        explanation = engine.explain(small, (layer,), method, target_class)
        score = float(engine.faithfulness(small, (layer,), method, target_class).score[0])
        explained = classes[explanation.explained_class]
        gallery.append((image_file(overlay(display, explanation.maps[layer], opacity)),
                        f"{name}: {method} for {explained} · ROAD {score:+.2f}"))
        top = np.argsort(-chances, kind="stable")[:TOP]
        rows.append(f"| {name} | " + " · ".join(f"{classes[i]} {100 * chances[i]:.0f}%" for i in top)
                    + f" | {explained} | {score:+.2f} |")
        numbers[name] = {"probabilities": {c: float(p) for c, p in zip(classes, chances)},
                         "predicted": classes[int(chances.argmax())], "explained_class": explained, "road": score}
    verdicts = {answer["predicted"] for answer in numbers.values()}
    agreement = (f"The models agree: **{verdicts.pop()}**." if len(verdicts) == 1
                 else "The models disagree: " + ", ".join(f"{name} says **{answer['predicted']}**"
                                                          for name, answer in numbers.items()) + ".")
    text = (f"{agreement} Each heatmap is {method} at `{layer}` for "
            + ("the class that model predicts" if target == PREDICTED else f"**{target}**")
            + "; ROAD: higher is more faithful to that model, random maps score about 0.\n\n"
            f"| model | top {TOP} (calibrated) | heatmap for | ROAD |\n|---|---|---|---|\n" + "\n".join(rows))
    return gallery, text, numbers


def refresh(models: Served, image, layer, target, method, opacity):
    """compare_models, for the tab when it is opened: with no picture yet, what to do first."""
    if image is None:
        return [], "Upload a picture (or click an example) on **Predict & explain** first.", {}
    return compare_models(models, image, layer, target, method, opacity)


def build_tab(models: Served, tab: gr.Tab, image, layer, target, method, opacity, gpu_task) -> None:
    """The tab's controls and events (inside the page's Blocks), on the Predict tab's picture and controls."""
    gr.Markdown("The picture, layer, method and class chosen on **Predict & explain**, answered by every model this "
                "page serves: " + ", ".join(f"**{name}**" for name in models.names) + ".")
    button = gr.Button("Compare the models", variant="primary")
    text = gr.Markdown(elem_id="models-text")
    gallery = gr.Gallery(label="Each model's heatmap", columns=len(models.names), height="auto",
                         elem_id="models-side-by-side")
    numbers = gr.JSON(visible=False)
    inputs, outputs = [image, layer, target, method, opacity], [gallery, text, numbers]
    button.click(gpu_task(partial(compare_models, models)), inputs, outputs, api_name="compare_models")
    tab.select(gpu_task(partial(refresh, models)), inputs, outputs, api_visibility="private")
