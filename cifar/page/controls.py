"""What the tabs share: the choices a request may name (a layer, a method, a class, an opacity) and their checks, each
refusal a message for the person; the uploaded picture read into what the model sees; the component that hands the
upload over undecoded; and what the page says of the methods' costs.
"""

import gradio as gr
import numpy as np

from cifar.engine.explainer import CLASS_AGNOSTIC, COSTLY_METHODS, LAYER_AGNOSTIC, LAYERS
from cifar.engine.cam import METHODS
from cifar.engine.pictures import BadImage, load_image, prepare

PREDICTED = "predicted class"  # a heatmap of the class the model predicts
RUNNER_UP = "runner-up"  # the class a contrast compares with, by default
ALL = "all"  # no filter on a class
# What each method costs and means, under the page's method choice.
METHOD_INFO = (f"Each is one forward and one backward pass for all layers (milliseconds), except "
               f"{', '.join(COSTLY_METHODS)}: hundreds of forward passes (one per channel, 512 at layer4; SESS one per "
               f"window of the picture), seconds on a CPU, so the strip of the four stages follows its heatmap. "
               + " ".join(f"{name} shows the same map for every class ({why})."
                          for name, why in CLASS_AGNOSTIC.items())
               + " ".join(f" {name} shows the same map at every layer ({why})." for name, why in LAYER_AGNOSTIC.items()))


class UploadedImage(gr.Image):
    """gr.Image that hands the handler the uploaded file itself, undecoded, so that every bad upload (not an image,
    truncated, a decompression bomb) gets our message instead of a preprocessing error."""

    is_template = True  # the browser side is the ordinary Image component

    def preprocess(self, payload):
        if payload is None or payload.path is None:
            return super().preprocess(payload)  # data: URLs from the clipboard
        return payload.path


def model_input(image) -> tuple[np.ndarray, np.ndarray]:
    """(32x32 uint8 model input, the page's view of the same crop) of an upload, or a message for its sender."""
    try:
        return prepare(load_image(image))
    except BadImage as error:
        raise gr.Error(str(error)) from None


def painted_mask(editor) -> np.ndarray | None:
    """The strokes painted in a gr.ImageEditor (its value), as one mask of the canvas' size; None if it has none."""
    layers = (editor or {}).get("layers") or []
    return np.max(np.stack(layers), 0) if layers else None


def check_choice(what: str, value, choices) -> None:
    if value not in choices:
        raise gr.Error(f"Unknown {what} {value!r}: choose one of {', '.join(map(str, choices))}.")


def check_between(what: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise gr.Error(f"{what} must be between {low} and {high}, got {value}.")


def class_index(name: str, classes: list, everything: str) -> int | None:
    """The index of class `name`, None for `everything` (PREDICTED, ALL), or a message listing the choices."""
    if name == everything:
        return None
    if name not in classes:
        raise gr.Error(f"Unknown class {name!r}: choose '{everything}' or one of {', '.join(classes)}.")
    return classes.index(name)


def check_heatmap(classes: list, layer: str, method: str, target: str = PREDICTED, opacity: float = 0.5) -> int | None:
    """Refuses a heatmap the page cannot draw; returns the class index asked for (None: the predicted class)."""
    check_choice("layer", layer, LAYERS)
    check_choice("method", method, METHODS)
    check_between("opacity", opacity, 0, 1)
    return class_index(target, classes, PREDICTED)
