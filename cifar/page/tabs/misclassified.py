"""The Misclassified tab: the test images the model gets wrong, most confident mistakes first, by true and predicted
class (/misclassified), optionally with the gallery's heatmap and its ROAD score; and each mistake's evidence for the
class it predicted beside the one for its true class (/mistake_evidence). Both draw the maps stored with the run (both
bundled runs have them): they run no model there, and ask no GPU.
"""

import gradio as gr
import numpy as np

from cifar.engine.explainer import GALLERY_LAYER, GALLERY_METHOD, MISTAKE_SIDES
from cifar.engine.pictures import THUMBNAIL_SIZE, enlarge, overlay
from cifar.page.controls import ALL, check_between, class_index
from cifar.page.endpoints import QUICK, Gpu, endpoint
from cifar.page.image_files import image_file
from cifar.page.served import ServedModels

MOST_SHOWN = 100


def stored_or_quick(shows_heatmaps):
    """No GPU where the run stores the gallery's maps and their scores (or none are shown); else a quick request."""
    def seconds(tab, arguments):
        needed = shows_heatmaps(arguments) and not tab.models[arguments["model"]].stores_gallery
        return QUICK.seconds(tab, arguments) if needed else None
    return Gpu(f"none where the run stores the gallery's heatmaps and scores (both bundled runs); else {QUICK.text}",
               seconds)


class MisclassifiedTab:
    def __init__(self, models: ServedModels):
        self.models = models

    def _mistakes(self, served, count, true_class, predicted_class):
        """Indices into the run's misclassified set (most confident mistakes first), and a summary line."""
        check_between("count", int(count), 1, MOST_SHOWN)
        wrong = served.run.misclassified
        keep = np.ones(len(wrong["true"]), dtype=bool)
        for side, name in (("true", true_class), ("predicted", predicted_class)):
            index = class_index(name, served.classes, ALL)
            if index is not None:
                keep &= wrong[side] == index
        chosen = np.flatnonzero(keep)
        chosen = chosen[np.argsort(-served.mistake_confidence[chosen], kind="stable")][:int(count)]
        return chosen, f"{len(chosen)} shown of {int(keep.sum())} matching ({len(keep)} misclassified test images in all)"

    @staticmethod
    def _gallery_scores(served, chosen, side: str):
        stored = (served.run.faithfulness or {}).get("misclassified")
        return served.explainer.gallery_scores(served.run.misclassified, side, chosen, stored)

    @endpoint(stored_or_quick(lambda arguments: arguments["with_gradcam"]))
    def misclassified(self, count: float = 25, true_class: str = ALL, predicted_class: str = ALL,
                      with_gradcam: bool = False, opacity: float = 0.5, model: str | None = None):
        """Misclassified test images (most confident mistakes first), captioned, optionally with the gallery's
        heatmap (Grad-CAM at layer4) for the predicted class and its ROAD score."""
        served = self.models[model]
        check_between("opacity", opacity, 0, 1)
        chosen, text = self._mistakes(served, count, true_class, predicted_class)
        wrong = served.run.misclassified
        if with_gradcam and len(chosen):
            cams, scores = self._gallery_scores(served, chosen, "predicted")
        gallery = []
        for n, i in enumerate(chosen):
            picture = enlarge(wrong["images"][i], THUMBNAIL_SIZE)
            caption = (f"{served.classes[wrong['true'][i]]} → {served.classes[wrong['predicted'][i]]} "
                       f"{100 * served.mistake_confidence[i]:.0f}%")
            if with_gradcam:
                picture = overlay(picture, cams[n], opacity)
                caption += f" · ROAD {scores[n]:+.2f}"
            gallery.append((image_file(picture, exact=not with_gradcam), caption))
        return gallery, text

    @endpoint(stored_or_quick(lambda arguments: True))
    def mistake_evidence(self, count: float = 10, true_class: str = ALL, predicted_class: str = ALL,
                         opacity: float = 0.5, model: str | None = None):
        """For each mistake (most confident first), the gallery's heatmap for the class the model predicted beside
        the one for the true class, each with its ROAD score: what misled it, and what it saw of the truth."""
        served = self.models[model]
        check_between("opacity", opacity, 0, 1)
        chosen, text = self._mistakes(served, count, true_class, predicted_class)
        if not len(chosen):
            return [], text
        wrong = served.run.misclassified
        evidence = {side: self._gallery_scores(served, chosen, side) for side in MISTAKE_SIDES}
        gallery = []
        for n, i in enumerate(chosen):
            picture = enlarge(wrong["images"][i], THUMBNAIL_SIZE)
            for side in MISTAKE_SIDES:
                cams, scores = evidence[side]
                caption = f"{side}: {served.classes[wrong[side][i]]} · ROAD {scores[n]:+.2f}"
                if side == "predicted":
                    caption += f" ({100 * served.mistake_confidence[i]:.0f}%)"
                gallery.append((image_file(overlay(picture, cams[n], opacity)), caption))
        return gallery, text

    def build(self, page, picture, demo: gr.Blocks) -> None:
        """The tab's controls and events (inside the page's Blocks): the gallery is drawn when the page opens."""
        classes, endpoints, model = self.models.first.classes, page.endpoints, page.model
        with gr.Row():
            count = gr.Slider(1, MOST_SHOWN, value=25, step=1, label="How many", elem_id="mistake-count")
            true_class = gr.Dropdown([ALL] + classes, value=ALL, label="True class")
            predicted_class = gr.Dropdown([ALL] + classes, value=ALL, label="Predicted class")
            with_gradcam = gr.Checkbox(label=f"{GALLERY_METHOD} overlay ({GALLERY_LAYER}) with its ROAD score",
                                       elem_id="gradcam-overlay")
        summary = gr.Markdown()
        gallery = gr.Gallery(label="Misclassified test images: true → predicted (confidence), most confident first",
                             columns=5, height="auto", elem_id="misclassified")
        show = gr.Button("Show")
        evidence_button = gr.Button("Evidence: predicted class beside true class")
        evidence_text = gr.Markdown()
        evidence_gallery = gr.Gallery(label=f"{GALLERY_METHOD} ({GALLERY_LAYER}) for the predicted class · for the "
                                      "true class", columns=4, height="auto", elem_id="mistake-evidence")
        gallery_inputs = [count, true_class, predicted_class, with_gradcam, picture.opacity, model]
        evidence_inputs = [count, true_class, predicted_class, picture.opacity, model]
        endpoints.api("misclassified", gallery_inputs, [gallery, summary])
        endpoints.api("mistake_evidence", evidence_inputs, [evidence_gallery, evidence_text])
        for trigger in (show.click, demo.load, *(control.change for control in (count, true_class, predicted_class,
                                                                                 with_gradcam, model))):
            endpoints.on(trigger, "misclassified", gallery_inputs, [gallery, summary])
        endpoints.on(evidence_button.click, "mistake_evidence", evidence_inputs, [evidence_gallery, evidence_text])
