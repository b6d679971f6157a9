"""The Your pictures tab: many pictures at once (files, or ZIPs of them, cifar/engine/uploads.py), each with its
calibrated top prediction, the runner-up, its heatmap and the heatmap's ROAD score, in a table and a gallery sorted
as asked, and the same ZIP export as the Test set tab (/bulk, /bulk_export). What one user uploads lives for their
request only: it is read in a folder of the request's own, and what comes back is named by its content.
"""

from dataclasses import dataclass

import gradio as gr
import numpy as np

from cifar.engine.explainer import BATCH, COSTLY_METHODS, DEFAULT_LAYER, DEFAULT_METHOD, LAYERS
from cifar.engine.exports import export_zip
from cifar.engine.cam import METHODS
from cifar.engine.pictures import overlay
from cifar.engine.uploads import MOST_PICTURES, read_uploads
from cifar.page.controls import METHOD_INFO, PREDICTED, check_choice, check_heatmap
from cifar.page.endpoints import BY_FILES, endpoint
from cifar.page.image_files import ROAD_MEANING, archive_file, image_file
from cifar.page.served import ServedModels

SORTS = ("file order", "most confident first", "least confident first")
MOST_COSTLY = 10  # pictures a costly method explains in one request: seconds each
COLUMNS = ["file", "prediction", "confidence", "runner-up", "runner-up confidence", "ROAD"]
REFUSAL_COLUMNS = ["file", "why it was refused"]


@dataclass
class Answers:
    """What the model says of each usable picture, in the order asked for, and the files refused."""

    pictures: list
    probabilities: np.ndarray  # (N, classes), calibrated when the run can be
    maps: np.ndarray  # (N, 32, 32): the heatmap of each one's top class
    road: np.ndarray  # (N,)
    refusals: list

    def rows(self, classes: list) -> list[list]:
        """The table: file, top class, its confidence, the runner-up and its confidence, ROAD (rounded for people)."""
        rows = []
        for picture, probabilities, road in zip(self.pictures, self.probabilities, self.road):
            first, second = np.argsort(probabilities)[::-1][:2]
            rows.append([picture.name, classes[first], round(float(probabilities[first]), 4), classes[second],
                         round(float(probabilities[second]), 4), round(float(road), 4)])
        return rows


class BulkTab:
    def __init__(self, models: ServedModels):
        self.models = models

    def _answer(self, files, method, layer, sort, opacity, model) -> tuple:
        """(the served model, Answers), or a message for the user."""
        served = self.models[model]
        check_heatmap(served.classes, layer, method, PREDICTED, opacity)
        check_choice("order", sort, SORTS)
        paths = [files] if isinstance(files, str) else list(files or [])
        if not paths:
            raise gr.Error("Upload some pictures first (files, or a ZIP of them).")
        pictures, refusals = read_uploads(paths)
        if method in COSTLY_METHODS and len(pictures) > MOST_COSTLY:
            raise gr.Error(f"{method} takes seconds a picture: choose a one-pass method such as Grad-CAM for "
                           f"{len(pictures)} pictures, or upload at most {MOST_COSTLY}.")
        if not pictures:
            return served, Answers([], np.zeros((0, len(served.classes))), np.zeros((0, 32, 32)), np.zeros(0), refusals)
        smalls = np.stack([picture.small for picture in pictures])
        # The page's calibrated confidence (the run's TTA and temperature), as /predict answers each one.
        probabilities = np.concatenate([served.probabilities(smalls[start:start + BATCH])
                                        for start in range(0, len(smalls), BATCH)])
        top = probabilities.argmax(1)
        maps = served.explainer.heatmaps(smalls, (layer,), method, top)[0][:, 0]
        road = served.explainer.road(smalls, maps[:, None], top).score[:, 0]
        order = np.arange(len(pictures))
        if sort != SORTS[0]:
            order = np.argsort(-probabilities.max(1) if sort == SORTS[1] else probabilities.max(1), kind="stable")
        return served, Answers([pictures[i] for i in order], probabilities[order], maps[order], road[order], refusals)

    @endpoint(BY_FILES)
    def bulk(self, files, method: str = DEFAULT_METHOD, layer: str = DEFAULT_LAYER, sort: str = SORTS[0],
             opacity: float = 0.5, model: str | None = None):
        """Many pictures at once (up to 300: picture files, or ZIPs of them): a table of each one's file, top
        prediction, calibrated confidence, runner-up and the ROAD score of its heatmap; a gallery of the heatmaps of
        each top class; the files refused, each with the reason; and a summary."""
        served, answers = self._answer(files, method, layer, sort, opacity, model)
        rows = answers.rows(served.classes)
        gallery = [(image_file(overlay(picture.display, heatmap, opacity)),
                    f"{row[0]}: {row[1]} {100 * row[2]:.0f}% · ROAD {row[5]:+.2f}")
                   for picture, heatmap, row in zip(answers.pictures, answers.maps, rows)]
        refused = [[refusal.name, refusal.reason] for refusal in answers.refusals]
        summary = (f"{len(answers.pictures)} pictures answered, {len(refused)} files refused. Heatmaps: {method} at "
                   f"`{layer}`, each for its top class; confidence "
                   f"{'calibrated' if served.temperature else 'raw softmax'}; sorted by {sort}.")
        return rows, gallery, refused, summary

    @endpoint(BY_FILES)
    def bulk_export(self, files, method: str = DEFAULT_METHOD, layer: str = DEFAULT_LAYER, sort: str = SORTS[0],
                    opacity: float = 0.5, model: str | None = None) -> str:
        """What bulk answers, as a ZIP in the Test set tab's form: images and heatmaps (PNG and .npy) under numbers in
        the order asked for, index.csv (number, file, prediction, confidence, runner-up, ROAD) and manifest.json
        (model, method, layer, TTA, the files refused and why, versions)."""
        served, answers = self._answer(files, method, layer, sort, opacity, model)
        names = [f"{number:04d}" for number in range(len(answers.pictures))]
        rows = [{"name": name, **dict(zip(COLUMNS, row))} for name, row in zip(names, answers.rows(served.classes))]
        manifest = {"model": served.identity, "method": method, "layer": layer, "heatmaps_for": "the top class",
                    "tta": served.tta, "temperature": served.temperature,
                    "confidence": "calibrated" if served.temperature else "raw softmax", "sorted": sort,
                    "refused": [{"file": refusal.name, "reason": refusal.reason} for refusal in answers.refusals],
                    "road": ROAD_MEANING}
        images = np.stack([picture.small for picture in answers.pictures]) if answers.pictures else \
            np.zeros((0, 32, 32, 3), np.uint8)
        return archive_file(export_zip(names, images, answers.maps, rows, manifest), "pictures")

    @endpoint(BY_FILES, api=False)
    def resort(self, files, method, layer, sort, opacity, model=None):
        """The page's change of order: the pictures answered again in the new order; nothing before an upload."""
        if not files:
            return (gr.skip(),) * 4
        return self.bulk(files, method, layer, sort, opacity, model)

    def build(self, page, picture) -> None:
        """The tab's controls and events (inside the page's Blocks), answered by the model chosen on the page."""
        gr.Markdown(f"Upload up to {MOST_PICTURES} pictures at once, or ZIPs of them: each gets its top prediction "
                    "(calibrated), the runner-up and the heatmap of its top class with its ROAD score. Files that are "
                    "not pictures are named below with the reason; the others are answered.")
        # No file_types: Gradio would refuse the whole request for one file of another type; each is refused on
        # its own here, by name, and the others answered.
        files = gr.File(file_count="multiple", label="Pictures or ZIPs", elem_id="bulk-files")
        with gr.Row():
            method = gr.Dropdown(list(METHODS), value=DEFAULT_METHOD, label="Method", info=METHOD_INFO)
            layer = gr.Dropdown(list(LAYERS), value=DEFAULT_LAYER, label="Layer")
            sort = gr.Radio(list(SORTS), value=SORTS[0], label="Order")
        with gr.Row():
            run = gr.Button("Classify them all", variant="primary")
            export = gr.Button("Export them (ZIP)")
        summary = gr.Markdown(elem_id="bulk-summary")
        table = gr.Dataframe(headers=COLUMNS, label="Each picture", elem_id="bulk-table", interactive=False)
        gallery = gr.Gallery(label="Heatmaps of each top class", columns=6, height="auto", elem_id="bulk-gallery")
        refused = gr.Dataframe(headers=REFUSAL_COLUMNS, label="Refused", elem_id="bulk-refused", interactive=False)
        archive = gr.File(label="Exported pictures", elem_id="bulk-export", height=120)
        inputs = [files, method, layer, sort, picture.opacity, page.model]
        answered = [table, gallery, refused, summary]
        page.endpoints.api("bulk", inputs, answered)
        page.endpoints.api("bulk_export", inputs, archive)
        page.endpoints.on(run.click, "bulk", inputs, answered)
        page.endpoints.on(sort.change, "resort", inputs, answered)
        page.endpoints.on(export.click, "bulk_export", inputs, archive)
