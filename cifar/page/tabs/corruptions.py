"""The Corruptions tab: the current picture under one CIFAR-10-C corruption at every severity (0, the clean picture,
to 5), what each model served predicts for each and where its heatmap points, and how far that heatmap moved from the
clean picture's (/corruption).
"""

import gradio as gr
import numpy as np

from cifar.engine.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from cifar.engine.explainer import DEFAULT_LAYER, DEFAULT_METHOD
from cifar.engine.pictures import THUMBNAIL_SIZE, enlarge, overlay
from cifar.measure.sanity import spearman
from cifar.page.controls import check_choice, check_heatmap, model_input
from cifar.page.endpoints import BY_METHOD, endpoint
from cifar.page.image_files import image_file
from cifar.page.served import ServedModel, ServedModels

DEFAULT_CORRUPTION = "gaussian_noise"


def one_model(served: ServedModel, pictures: np.ndarray, layer: str, method: str) -> dict:
    """One model on the pictures (clean first): its calibrated probabilities, its heatmaps for the class it predicts
    on the clean picture, and each heatmap's rank correlation with the clean one's."""
    chances = [served.probabilities(p) for p in pictures]
    clean_class = int(chances[0].argmax())
    maps = served.explainer.heatmaps(pictures, (layer,), method, clean_class)[0][:, 0]
    return {"chances": chances, "clean_class": clean_class, "maps": maps,
            "similarity": [spearman(maps[0], heatmap) for heatmap in maps]}


class CorruptionsTab:
    def __init__(self, models: ServedModels):
        self.models = models

    @endpoint(BY_METHOD)
    def corruption(self, image, corruption: str = DEFAULT_CORRUPTION, layer: str = DEFAULT_LAYER,
                   method: str = DEFAULT_METHOD, opacity: float = 0.5):
        """The picture at severities 0 to 5 of `corruption`; below, for each model, each picture's heatmap for the
        class the model predicts on the clean picture, captioned with its prediction and the heatmap's rank correlation
        to the clean one's; and the numbers, {model: {predicted, confidence, rank_correlation}}."""
        models = self.models
        check_choice("corruption", corruption, CORRUPTIONS)
        check_heatmap(models.first.classes, layer, method, opacity=opacity)
        small, _ = model_input(image)
        pictures = np.concatenate([small[None], *(corrupt(small[None], corruption, s) for s in SEVERITIES)])
        answers = {name: one_model(models[name], pictures, layer, method) for name in models.names}
        classes = models.first.classes
        several = len(models.names) > 1
        gallery = [(image_file(enlarge(p, THUMBNAIL_SIZE), exact=True), f"severity {s}") for s, p in enumerate(pictures)]
        lines, numbers = [], {}
        for name, answer in answers.items():
            prefix = f"{name}: " if several else ""
            for s, (p, chances, heatmap) in enumerate(zip(pictures, answer["chances"], answer["maps"])):
                moved = "" if s == 0 else f" · ρ {answer['similarity'][s]:+.2f}"
                gallery.append((image_file(overlay(enlarge(p, THUMBNAIL_SIZE), heatmap, opacity)),
                                f"{prefix}{classes[chances.argmax()]} {100 * chances.max():.0f}%{moved}"))
            clean = classes[answer["clean_class"]]
            kept = sum(int(c.argmax()) == answer["clean_class"] for c in answer["chances"][1:])
            lines.append(f"{'**' + name + '** keeps' if several else 'The model keeps'} **{clean}** at {kept} of the "
                         f"{len(SEVERITIES)} severities; mean ρ {np.mean(answer['similarity'][1:]):+.2f}.")
            numbers[name] = {"predicted": [classes[c.argmax()] for c in answer["chances"]],
                             "confidence": [float(c.max()) for c in answer["chances"]],
                             "rank_correlation": answer["similarity"]}
        rows = "each model's" if several else "the model's"
        text = (f"**{corruption.replace('_', ' ')}**, severities 0 (clean) to 5, as in CIFAR-10-C. " + " ".join(lines) +
                f" Top row: the pictures; below, {rows} {method} heatmap at `{layer}` on each, for the class it predicts "
                "on the clean picture, captioned with its prediction there and how much of the clean heatmap's order the "
                "heatmap keeps (ρ, the rank correlation: 1 is the same order, 0 none of it).")
        return gallery, text, numbers

    @endpoint(BY_METHOD, api=False)
    def show_corruption(self, image, corruption, layer, method, opacity):
        """Another corruption chosen: /corruption for the picture there is; with none yet, what to do first."""
        if image is None:
            return [], "Upload a picture (or click an example) on **Predict & explain** first.", {}
        return self.corruption(image, corruption, layer, method, opacity)

    def build(self, page, picture) -> None:
        """The tab's controls and events (inside the page's Blocks), on the Predict tab's picture, layer, method and
        opacity; every model served answers."""
        has_table = any("corruptions" in served.run.metrics for served in self.models)
        gr.Markdown("The picture on **Predict & explain**, under one corruption at every severity: what phones and "
                    "shrinking to 32x32 do to a photo." + (" How each model does on each over the test set is on the "
                                                             "Training tab." if has_table else ""))
        with gr.Row():
            corruption = gr.Dropdown(list(CORRUPTIONS), value=DEFAULT_CORRUPTION, label="Corruption")
            button = gr.Button("Corrupt", variant="primary")
        text = gr.Markdown(elem_id="corruption-text")
        gallery = gr.Gallery(label="Severity 0 (clean) to 5: the picture; each model's prediction and heatmap",
                             columns=len(SEVERITIES) + 1, height="auto", elem_id="corruption")
        numbers = gr.JSON(visible=False)
        inputs = [picture.image, corruption, picture.layer, picture.method, picture.opacity]
        outputs = [gallery, text, numbers]
        page.endpoints.api("corruption", inputs, outputs)
        page.endpoints.on(button.click, "corruption", inputs, outputs)
        page.endpoints.on(corruption.change, "show_corruption", inputs, outputs)
