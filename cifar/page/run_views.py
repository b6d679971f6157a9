"""What the page shows of one run, drawn from its folder: the header's summary line, the Training tab (numbers,
curves, per-class accuracy, confusion, reliability, corruptions), the Faithfulness tab (the ROAD table, the sanity
check) and the model card. The page (cifar/page/layout.py) draws these once per model (cifar/page/served.py's OnePerModel).
"""

import re

import gradio as gr

from cifar.measure.corruption_benchmark import card_section as corruption_section
from cifar.measure.faithfulness_table import markdown as faithfulness_markdown
from cifar.runs.folder import CALIBRATION_FIGURE, CORRUPTIONS_FIGURE, RANDOMIZATION_FIGURE, Run
from cifar.measure.sanity import card_section as sanity_section
from cifar.page.served import OnePerModel


def metrics_markdown(run: Run) -> str:
    m, epochs = run.metrics, run.history["epochs"]
    minutes = sum(e["seconds"] for e in epochs) / 60
    return (f"| metric | value |\n|---|---|\n| test accuracy | **{100 * m['test_accuracy']:.2f}%** |\n"
            f"| with {m['tta']} TTA | **{100 * m['test_accuracy_tta']:.2f}%** |\n"
            f"| test loss | {m['test_loss']:.4f} |\n| epochs | {len(epochs)} |\n"
            f"| training time | {minutes:.1f} min on {run.history['device']} |\n" + calibration_rows(m))


def model_summary(name: str, run: Run, test_accuracy: float) -> str:
    """One line on the chosen model: what it is and how accurate (`test_accuracy`: as the page serves it, with its TTA)."""
    start = run.history["config"].get("init")
    made = (f"fine-tuned from {start} ({augmentation_text(run.history['config'])})" if start
            else "trained from scratch")
    return (f"**{name}**: {made}; {100 * test_accuracy:.2f}% test accuracy"
            + (f", {100 * run.metrics['corruptions']['mean']:.1f}% under the CIFAR-10-C corruptions"
               if "corruptions" in run.metrics else "") + ".")


def augmentation_text(config: dict) -> str:
    return f"AugMix severity {config['augmix']}" if config.get("augmix") else "the same augmentation"


def calibration_rows(metrics: dict) -> str:
    if "calibration" not in metrics:
        return ""
    calibration = metrics["calibration"]
    before, after = calibration["before"], calibration["after"]
    return (f"| calibration temperature | {calibration['temperature']:.3f} (fitted on {calibration['fitted_on']}) |\n"
            f"| expected calibration error, raw → calibrated | {100 * before['ece']:.2f}% → {100 * after['ece']:.2f}% "
            f"(on {calibration['reported_on']}) |\n| NLL, raw → calibrated | {before['nll']:.4f} → {after['nll']:.4f} |\n")


def per_class_table(run: Run) -> list:
    return [[name, round(100 * acc, 2)] for name, acc in run.metrics["per_class_accuracy"].items()]


def model_card_text(run: Run) -> str:
    card = (run.path / "README.md").read_text() if (run.path / "README.md").exists() else "No model card."
    return without_images(re.sub(r"\A---\n.*?\n---\n", "", card, flags=re.S))  # YAML front matter is for the Hub


def without_images(markdown: str) -> str:
    """Markdown with its image links taken out: they name files of the run folder, which the page shows itself."""
    return re.sub(r"!\[[^\]]*\]\([^)]*\)\n?", "", markdown)


def faithfulness_tab_text(run: Run) -> str:
    if not run.faithfulness:
        return ("This run has no faithfulness table yet: `python -m cifar.measure.faithfulness_table RUN_FOLDER` computes it "
                "(every method at every layer over 500 test images) and stores it in the run folder.")
    return ("Which method and layer explain this model best: each heatmap's ROAD score, averaged over the same "
            "test images, against three maps that ignore what the model learned: random, the image's edges and a blob "
            "at its centre.\n\n" + faithfulness_markdown(run.faithfulness))


def training_view(run: Run, shown: OnePerModel, name: str) -> None:
    """The Training tab of one model: its numbers, curves, per-class accuracy, confusion, reliability, corruptions."""
    gr.Markdown(metrics_markdown(run))
    with gr.Row():
        gr.Image(str(run.path / "accuracy.png"), label="Accuracy", interactive=False,
                 elem_id=shown.id("accuracy-curve", name))
        gr.Image(str(run.path / "loss.png"), label="Loss", interactive=False)
    with gr.Row():
        gr.Dataframe(per_class_table(run), headers=["class", "test accuracy (%)"], label="Per-class accuracy")
        gr.Image(str(run.path / "confusion_matrix.png"), label="Confusion matrix", interactive=False)
    if (run.path / CALIBRATION_FIGURE).is_file():
        gr.Image(str(run.path / CALIBRATION_FIGURE), label="Reliability: raw and calibrated confidence",
                 interactive=False, elem_id=shown.id("reliability", name))
    if "corruptions" in run.metrics:
        gr.Markdown(without_images(corruption_section(run.metrics["corruptions"])),
                    elem_id=shown.id("corruptions", name))
    if (run.path / CORRUPTIONS_FIGURE).is_file():
        gr.Image(str(run.path / CORRUPTIONS_FIGURE), label="Accuracy under each corruption, by severity",
                 interactive=False, elem_id=shown.id("corruptions-plot", name))


def faithfulness_view(run: Run, shown: OnePerModel, name: str) -> None:
    """The Faithfulness tab of one model: its ROAD table and its randomization sanity check."""
    gr.Markdown(faithfulness_tab_text(run), elem_id=shown.id("faithfulness-table", name))
    if "randomization" in run.metrics:
        gr.Markdown(without_images(sanity_section(run.metrics["randomization"])),
                    elem_id=shown.id("randomization-table", name))
    if (run.path / RANDOMIZATION_FIGURE).is_file():
        gr.Image(str(run.path / RANDOMIZATION_FIGURE), label="Similarity to the trained model's maps as the "
                 "weights are randomized from the logits down", interactive=False, elem_id=shown.id("randomization", name))
