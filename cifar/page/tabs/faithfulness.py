"""The Faithfulness tab: each model's table of every metric (which method to trust for what, every method at every
layer beside its controls, how far the metrics agree), its ROAD table on more pictures, and its model-randomization
sanity check, from its run folder; the chosen model's are shown. No endpoint.
"""

import gradio as gr

from cifar.measure.faithfulness_table import markdown as faithfulness_markdown
from cifar.measure.metrics_table import markdown as metrics_markdown
from cifar.measure.sanity import card_section as sanity_section
from cifar.page.served import OnePerModel, ServedModel
from cifar.page.tabs.model_card import without_images
from cifar.runs.folder import RANDOMIZATION_FIGURE, Run


def faithfulness_tab_text(run: Run) -> str:
    if not run.faithfulness:
        return ("This run has no faithfulness table yet: `python -m cifar.measure.faithfulness_table RUN_FOLDER` computes it "
                "(every method at every layer over 500 test images) and stores it in the run folder.")
    by_every_metric = ""
    if "metrics" in run.faithfulness:
        by_every_metric = ("### By every metric\n\n" + metrics_markdown(run.faithfulness["metrics"])
                           + "\n\n### ROAD on more pictures\n\n")
    return (by_every_metric + "Which method and layer explain this model best by ROAD: each heatmap's score, averaged "
            "over the same test images, against three maps that ignore what the model learned: random, the image's "
            "edges and a blob at its centre.\n\n" + faithfulness_markdown(run.faithfulness))


def draw(served: ServedModel, shown: OnePerModel) -> None:
    """One model's Faithfulness tab (inside the page's Blocks)."""
    run, name = served.run, served.name
    gr.Markdown(faithfulness_tab_text(run), elem_id=shown.id("faithfulness-table", name))
    if "randomization" in run.metrics:
        gr.Markdown(without_images(sanity_section(run.metrics["randomization"])),
                    elem_id=shown.id("randomization-table", name))
    if (run.path / RANDOMIZATION_FIGURE).is_file():
        gr.Image(str(run.path / RANDOMIZATION_FIGURE), label="Similarity to the trained model's maps as the weights "
                 "are randomized from the logits down", interactive=False, elem_id=shown.id("randomization", name))
