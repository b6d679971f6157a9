"""The Models side by side tab (when the page serves more than one): for the picture on Predict & explain, every
model's prediction and its heatmap at the chosen layer, method and class, with the heatmap's ROAD score
(/compare_models).
"""

import gradio as gr
import numpy as np

from cifar.engine.explainer import DEFAULT_LAYER, DEFAULT_METHOD
from cifar.engine.pictures import overlay
from cifar.page.controls import PREDICTED, check_heatmap, model_input
from cifar.page.endpoints import BY_METHOD, endpoint
from cifar.page.image_files import image_file
from cifar.page.served import ServedModels

TOP = 3  # classes listed per model


class SideBySideTab:
    def __init__(self, models: ServedModels):
        self.models = models

    @endpoint(BY_METHOD)
    def compare_models(self, image, layer: str = DEFAULT_LAYER, target: str = PREDICTED, method: str = DEFAULT_METHOD,
                       opacity: float = 0.5):
        """Each model's heatmap (captioned with the class it explains and its ROAD score), a table of each one's top
        classes (calibrated, as the page shows them), and the numbers: each model's probabilities, explained class,
        ROAD."""
        classes = self.models.first.classes
        target_class = check_heatmap(classes, layer, method, target, opacity)
        small, display = model_input(image)
        gallery, rows, numbers = [], [], {}
        for served in self.models:
            chances = served.probabilities(small)
            explanation = served.explainer.explain(small, (layer,), method, target_class)
            score = float(served.explainer.faithfulness(small, (layer,), method, target_class).score[0])
            explained = classes[explanation.explained_class]
            gallery.append((image_file(overlay(display, explanation.maps[layer], opacity)),
                            f"{served.name}: {method} for {explained} · ROAD {score:+.2f}"))
            top = np.argsort(-chances, kind="stable")[:TOP]
            rows.append(f"| {served.name} | " + " · ".join(f"{classes[i]} {100 * chances[i]:.0f}%" for i in top)
                        + f" | {explained} | {score:+.2f} |")
            numbers[served.name] = {"probabilities": {c: float(p) for c, p in zip(classes, chances)},
                                    "predicted": classes[int(chances.argmax())], "explained_class": explained,
                                    "road": score}
        verdicts = {answer["predicted"] for answer in numbers.values()}
        agreement = (f"The models agree: **{verdicts.pop()}**." if len(verdicts) == 1
                     else "The models disagree: " + ", ".join(f"{name} says **{answer['predicted']}**"
                                                              for name, answer in numbers.items()) + ".")
        text = (f"{agreement} Each heatmap is {method} at `{layer}` for "
                + ("the class that model predicts" if target == PREDICTED else f"**{target}**")
                + "; ROAD: higher is more faithful to that model, random maps score about 0.\n\n"
                f"| model | top {TOP} (calibrated) | heatmap for | ROAD |\n|---|---|---|---|\n" + "\n".join(rows))
        return gallery, text, numbers

    @endpoint(BY_METHOD, api=False)
    def show_models(self, image, layer, target, method, opacity):
        """The tab opened: /compare_models for the picture there is; with none yet, what to do first."""
        if image is None:
            return [], "Upload a picture (or click an example) on **Predict & explain** first.", {}
        return self.compare_models(image, layer, target, method, opacity)

    def build(self, page, picture, tab: gr.Tab) -> None:
        """The tab's controls and events (inside the page's Blocks), on the Predict tab's picture and controls."""
        gr.Markdown("The picture, layer, method and class chosen on **Predict & explain**, answered by every model this "
                    "page serves: " + ", ".join(f"**{name}**" for name in self.models.names) + ".")
        button = gr.Button("Compare the models", variant="primary")
        text = gr.Markdown(elem_id="models-text")
        gallery = gr.Gallery(label="Each model's heatmap", columns=len(self.models.names), height="auto",
                             elem_id="models-side-by-side")
        numbers = gr.JSON(visible=False)
        inputs = [picture.image, picture.layer, picture.target, picture.method, picture.opacity]
        outputs = [gallery, text, numbers]
        page.endpoints.api("compare_models", inputs, outputs)
        page.endpoints.on(button.click, "compare_models", inputs, outputs)
        page.endpoints.on(tab.select, "show_models", inputs, outputs)
