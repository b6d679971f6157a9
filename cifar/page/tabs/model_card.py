"""The Model card tab: each model's card (its run folder's README.md, as the Hub shows it), the chosen one's shown.
No endpoint.
"""

import re

import gradio as gr

from cifar.page.served import OnePerModel, ServedModel
from cifar.runs.folder import Run


def model_card_text(run: Run) -> str:
    card = (run.path / "README.md").read_text() if (run.path / "README.md").exists() else "No model card."
    return without_images(re.sub(r"\A---\n.*?\n---\n", "", card, flags=re.S))  # YAML front matter is for the Hub


def without_images(markdown: str) -> str:
    """Markdown with its image links taken out: they name files of the run folder, which the page shows itself."""
    return re.sub(r"!\[[^\]]*\]\([^)]*\)\n?", "", markdown)


def draw(served: ServedModel, shown: OnePerModel) -> None:
    """One model's card (inside the page's Blocks)."""
    gr.Markdown(model_card_text(served.run))
