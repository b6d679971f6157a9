"""The Training tab: each model's numbers, curves, per-class accuracy, confusion matrix, reliability diagram and
accuracy under corruptions, drawn from its run folder once at start-up (the page shows the chosen model's). No endpoint.
"""

import gradio as gr

from cifar.measure.corruption_benchmark import card_section as corruption_section
from cifar.page.served import OnePerModel, ServedModel
from cifar.page.tabs.model_card import without_images
from cifar.runs.folder import CALIBRATION_FIGURE, CORRUPTIONS_FIGURE, Run


def metrics_markdown(run: Run) -> str:
    m, epochs = run.metrics, run.history["epochs"]
    minutes = sum(e["seconds"] for e in epochs) / 60
    return (f"| metric | value |\n|---|---|\n| test accuracy | **{100 * m['test_accuracy']:.2f}%** |\n"
            f"| with {m['tta']} TTA | **{100 * m['test_accuracy_tta']:.2f}%** |\n"
            f"| test loss | {m['test_loss']:.4f} |\n| epochs | {len(epochs)} |\n"
            f"| training time | {minutes:.1f} min on {run.history['device']} |\n" + calibration_rows(m))


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


def draw(served: ServedModel, shown: OnePerModel) -> None:
    """One model's Training tab (inside the page's Blocks)."""
    run, name = served.run, served.name
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
        gr.Markdown(without_images(corruption_section(run.metrics["corruptions"])), elem_id=shown.id("corruptions", name))
    if (run.path / CORRUPTIONS_FIGURE).is_file():
        gr.Image(str(run.path / CORRUPTIONS_FIGURE), label="Accuracy under each corruption, by severity",
                 interactive=False, elem_id=shown.id("corruptions-plot", name))
