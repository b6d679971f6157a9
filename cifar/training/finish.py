"""What training leaves when it ends: the weights as they ship, the test report measured on them, the misclassified
images with their heatmaps, the calibration, the curves and the model card (cifar/runs/folder.py lists the files).
"""

from pathlib import Path

from cifar.engine.calibration import fits_on_validation, run_calibration
from cifar.engine.explainer import MISTAKE_SIDES, Explainer, heatmap_key
from cifar.engine.model import ResNet18
from cifar.engine.predict import tta_of_views
from cifar.files import STATE_NAME, atomic_write, read_json, save_json
from cifar.runs.card import model_card
from cifar.runs.folder import CALIBRATION_FIGURE, PREDICTIONS_FILE, save_npz
from cifar.runs.plots import confusion_figure, curve_figure, reliability_figure, save_figure
from cifar.training.evaluate import accuracy_by_tta, test_report, validation_views


def finish_run(run_dir: Path, data: dict, model: ResNet18, run_info: dict, device="cpu") -> dict:
    """Write the shipped artifacts of a trained run; returns its metrics.

    The metrics are measured on the weights reloaded from the folder (fp16 storage), i.e. on
    exactly what ships.
    """
    run_dir = Path(run_dir)
    history = read_json(run_dir / "history.json")
    model.save_pretrained(run_dir)
    shipped = ResNet18.from_pretrained(run_dir, map_location=str(device))
    x_test, y_test = data["test"]
    config = history["config"]
    metrics, misclassified, predictions = test_report(shipped, x_test, y_test, shipped.classes, config["tta"], device)
    explainer = Explainer(shipped)
    for side in MISTAKE_SIDES:
        misclassified[heatmap_key(side)] = explainer.mistake_heatmaps(misclassified["images"], misclassified[side])
    validation = None
    if config["val_size"]:  # what the recipe's choices (its TTA among them) are made on
        views, y_val = validation_views(shipped, data, config, device)
        metrics["val_accuracy_by_tta"] = accuracy_by_tta(views, y_val)
        validation = (tta_of_views(views, config["tta"]), y_val) if fits_on_validation(config) else None
    metrics["calibration"] = run_calibration(predictions["logits_tta"], y_test, validation)
    save_json(run_dir / "metrics.json", metrics)
    atomic_write(run_dir / "misclassified.npz", lambda tmp: save_npz(tmp, misclassified))
    atomic_write(run_dir / PREDICTIONS_FILE, lambda tmp: save_npz(tmp, predictions))
    write_figures(run_dir, history, metrics)
    info = {"train_images": len(data["train"][0]) - config["val_size"], **run_info}
    (run_dir / "README.md").write_text(model_card(metrics, history, info))
    # The run is complete: the optimizer state (2x the weights) has no further use.
    (run_dir / STATE_NAME).unlink(missing_ok=True)
    return metrics


def write_figures(run_dir: Path, history: dict, metrics: dict) -> None:
    """accuracy.png, loss.png, confusion_matrix.png, calibration.png: drawn from history.json and metrics.json."""
    for metric in ("accuracy", "loss"):
        save_figure(curve_figure(history, metric), run_dir / f"{metric}.png")
    save_figure(confusion_figure(metrics), run_dir / "confusion_matrix.png")
    if "calibration" in metrics:
        save_figure(reliability_figure(metrics["calibration"]), run_dir / CALIBRATION_FIGURE)
