"""The page: a header, the model chooser, and the tabs in order (cifar/page/tabs/, one module each). Every endpoint
a tab declares is in one table (cifar/page/endpoints.py), from which the page's events and the API are wired.
"""

from dataclasses import dataclass

import gradio as gr

from cifar.dataset import read_test_set
from cifar.device import device_name, model_device
from cifar.page.assistant_tools import serve_every_output
from cifar.page.endpoints import Endpoints
from cifar.page.image_files import CACHE_SECONDS
from cifar.page.served import ServedModel, ServedModels, draw_each
from cifar.page.tabs import faithfulness, model_card, training
from cifar.page.tabs.bulk import BulkTab
from cifar.page.tabs.compare import CompareTab
from cifar.page.tabs.corruptions import CorruptionsTab
from cifar.page.tabs.misclassified import MisclassifiedTab
from cifar.page.tabs.predict import PredictTab
from cifar.page.tabs.test_heatmap import HeatmapTestTab
from cifar.page.tabs.test_map import TestMapTab
from cifar.page.tabs.side_by_side import SideBySideTab
from cifar.page.tabs.test_set import TestSetTab
from cifar.runs.folder import Run

TITLE = "CIFAR-10 ResNet-18 + Grad-CAM"
# Every tab whose module declares endpoints, in the page's order: the API's reference is read from these
# (`python -m cifar.page.api`). The Models side by side tab is on the page only when it serves several models.
TABS_WITH_ENDPOINTS = (PredictTab, HeatmapTestTab, CompareTab, CorruptionsTab, SideBySideTab, MisclassifiedTab, TestSetTab,
                       TestMapTab, BulkTab)
# Chosen for a 2-core CPU: 4 requests run at once (most take milliseconds of model time, a costly heatmap seconds),
# up to 64 wait, more are turned away with a "queue full" message instead of piling up.
CONCURRENCY_LIMIT = 4
QUEUE_SIZE = 64
# Anything larger is refused before it reaches us: a ZIP of a few hundred photos fits (the Your pictures tab); a
# picture alone may be at most pictures.MAX_BYTES (10 MB).
MAX_UPLOAD = "100mb"
# Gradio draws an uploaded image no larger than its own size: a 32x32 CIFAR picture (every example) would be a stamp in
# a 256-pixel box. Fit it to the box instead, as the outputs are.
CSS = "#input-image img { object-fit: contain; }"


@dataclass
class Page:
    """What every tab's controls reach: the endpoint table and the model chooser."""

    endpoints: Endpoints
    model: gr.Dropdown


def model_summary(served: ServedModel) -> str:
    """One line on a model: what it is and how accurate, as the page serves it (with its TTA)."""
    run, config = served.run, served.run.history["config"]
    augmentation = f"AugMix severity {config['augmix']}" if config.get("augmix") else "the same augmentation"
    made = f"fine-tuned from {config['init']} ({augmentation})" if config.get("init") else "trained from scratch"
    return (f"**{served.name}**: {made}; {100 * served.test_accuracy:.2f}% test accuracy"
            + (f", {100 * run.metrics['corruptions']['mean']:.1f}% under the CIFAR-10-C corruptions"
               if "corruptions" in run.metrics else "") + ".")


def build_demo(runs: dict | Run, examples: list | None = None, tta: str | None = None, test_set=None) -> gr.Blocks:
    """The page for `runs` ({name: run}, the first chosen by default; or one run alone); `test_set` (test.npz, or a
    folder with one), when given, is browsed on its own tab."""
    models = ServedModels.load(runs, tta, test_set and read_test_set(test_set))  # the test set read once
    several = len(models.names) > 1
    predict, heatmap_test, compare, corruptions, side_by_side, misclassified, test_set_tab, test_map, bulk = tabs = (
        PredictTab(models, examples), HeatmapTestTab(models), CompareTab(models), CorruptionsTab(models), SideBySideTab(models),
        MisclassifiedTab(models), TestSetTab(models), TestMapTab(models), BulkTab(models))
    # The tabs that serve endpoints here: Models side by side with several models, Test set with a test set, Test-set
    # map with a map of the default model's test set.
    endpoints = Endpoints([tab for tab in tabs if (several or tab is not side_by_side)
                           and (models.first.test_set is not None or tab is not test_set_tab)
                           and (models.default in test_map.maps or tab is not test_map)])
    first = models.first
    with gr.Blocks(title=TITLE, delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as demo:
        gr.Markdown(f"# {TITLE}\nResNet-18s trained on CIFAR-10. Upload a picture of one of: "
                    f"{', '.join(first.classes)}; see what the model predicts and where it looked. "
                    f"Computing on: **{device_name(model_device(first.run.model))}**.", elem_id="header")
        # The model every tab answers with; hidden when there is only one.
        page = Page(endpoints, gr.Dropdown(models.names, value=models.default, label="Model", visible=several,
                                           elem_id="model-choice"))
        draw_each(models, page.model, lambda served, shown: gr.Markdown(
            model_summary(served), elem_id=shown.id("model-summary", served.name)))
        with gr.Tab("Predict & explain"):
            picture = predict.build(page)
            heatmap_test.build(page, picture)
        with gr.Tab("Compare") as tab:
            compare.build(page, picture, tab)
        with gr.Tab("Corruptions"):
            corruptions.build(page, picture)
        if several:
            with gr.Tab("Models side by side") as tab:
                side_by_side.build(page, picture, tab)
        with gr.Tab("Training"):
            draw_each(models, page.model, training.draw)
        with gr.Tab("Misclassified"):
            misclassified.build(page, picture, demo)
        with gr.Tab("Test set"):
            test_set_tab.build(page, picture)
        with gr.Tab("Test-set map"):
            test_map.build(page, picture)
        with gr.Tab("Your pictures"):
            bulk.build(page, picture)
        with gr.Tab("Faithfulness"):
            draw_each(models, page.model, faithfulness.draw)
        with gr.Tab("Model card"):
            draw_each(models, page.model, model_card.draw)
    endpoints.check_complete()
    demo.served_models, demo.endpoints = models, endpoints  # for the tests and benchmarks that look inside
    return demo


def launch(demo: gr.Blocks, mcp: bool = False, **options):
    """Queue and launch with the app's limits (app.py, the tests and the benchmarks all use this); `mcp`: also serve
    the API's endpoints as MCP tools (cifar/page/assistant_tools.py)."""
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_SIZE)
    if mcp:
        serve_every_output()
    return demo.launch(max_file_size=MAX_UPLOAD, show_error=True, css=CSS, mcp_server=mcp, **options)
