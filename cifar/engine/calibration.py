"""How far the page's confidence can be trusted: the expected calibration error and reliability diagram of a run's
TTA predictions, before and after temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks":
CIFAR-10 ResNet-110, ECE 4.6% -> 0.83%).

Temperature scaling divides every logit by one number T, fitted by minimising the negative log-likelihood on held-out
data. It never changes which class is predicted, only how sure the model says it is. The temperature is never fitted
on the images it is reported on: a run with a validation split fits on it and reports on the test set; a run trained
on all 50,000 training images (the bundled one) fits on a fixed half of the test set and reports on the other half.
Every run records its calibration when it finishes (cifar/training/finish.py); `python -m cifar.measure.recalibrate RUN` adds it
to an older run.
"""

import numpy as np
import torch
import torch.nn.functional as F

BINS = 15  # equal-width confidence bins, as Guo et al.
HALVES_SEED = 0  # which half of the test set fits the temperature when a run has no validation split
BOOTSTRAP = 1000  # resamples of the reporting images for the ECE's 90% interval


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict:
    """Per equal-width confidence bin (lower edge exclusive, as Guo et al.): its image count, mean confidence and
    accuracy (0 where empty). Confidence: the probability of the predicted class."""
    confidence, correct = probabilities.max(1), probabilities.argmax(1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    shown = np.maximum(count, 1)
    return {"count": count.tolist(),
            "confidence": (np.bincount(which, confidence, bins) / shown).tolist(),
            "accuracy": (np.bincount(which, correct, bins) / shown).tolist()}


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """The gap between confidence and accuracy, bin by bin, weighted by the share of images in the bin."""
    table = reliability(probabilities, labels, bins)
    count = np.asarray(table["count"])
    gaps = np.abs(np.asarray(table["confidence"]) - np.asarray(table["accuracy"]))
    return float((count * gaps).sum() / count.sum())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the cross-entropy of softmax(logits / T): L-BFGS on log T, in float64."""
    logits, labels = torch.from_numpy(logits).double(), torch.from_numpy(labels)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def loss():
        optimizer.zero_grad()
        value = F.cross_entropy(logits / log_t.exp(), labels)
        value.backward()
        return value

    optimizer.step(loss)
    return float(log_t.detach().exp())


def scaled_probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return torch.from_numpy(np.asarray(logits, np.float64) / temperature).softmax(-1).numpy()


def held_out_halves(count: int, seed: int = HALVES_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(fitting, reporting) indices: a seeded random half of the test set each, sorted, disjoint."""
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[:count // 2]), np.sort(order[count // 2:])


def summary(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict:
    """ECE (with a 90% bootstrap interval), negative log-likelihood, accuracy and reliability table."""
    probabilities = scaled_probabilities(logits, temperature)
    rng = np.random.default_rng(0)
    resampled = [expected_calibration_error(probabilities[i], labels[i])
                 for i in rng.integers(0, len(labels), (BOOTSTRAP, len(labels)))]
    nll = -np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, None)).mean()
    return {"ece": expected_calibration_error(probabilities, labels),
            "ece_interval": [float(np.quantile(resampled, 0.05)), float(np.quantile(resampled, 0.95))],
            "nll": float(nll), "accuracy": float((probabilities.argmax(1) == labels).mean()),
            "reliability": reliability(probabilities, labels)}


def calibrate(fit_logits, fit_labels, report_logits, report_labels, fitted_on: str, reported_on: str) -> dict:
    """What metrics.json records under "calibration": the temperature, where it was fitted and reported, and the
    reporting images' ECE, NLL and reliability table before (T = 1) and after."""
    temperature = fit_temperature(fit_logits, fit_labels)
    return {"temperature": temperature, "bins": BINS, "fitted_on": fitted_on, "reported_on": reported_on,
            "before": summary(report_logits, report_labels, 1.0),
            "after": summary(report_logits, report_labels, temperature),
            "best_temperature_ece": best_temperature_ece(report_logits, report_labels)}


def best_temperature_ece(logits: np.ndarray, labels: np.ndarray) -> float:
    """The lowest ECE any single temperature gives these images (a grid from 0.25 to 4, chosen by looking at them:
    a bound, never a result). What temperature scaling leaves above it is the fit's; the rest is the shape of the
    miscalibration, which no one temperature can change."""
    return min(expected_calibration_error(scaled_probabilities(logits, t), labels) for t in np.geomspace(0.25, 4, 241))


def fits_on_validation(config: dict) -> bool:
    """Whether a run's temperature is fitted on its validation split: it has one, and no starting weights of a
    fine-tune saw it (the robust model starts from weights trained on all 50,000 images: on that split it is more
    accurate, so more confident, than on new pictures; it is fitted on half the test set instead, as a run without a
    split is)."""
    return bool(config["val_size"]) and not config.get("init")


def run_calibration(test_logits: np.ndarray, test_labels: np.ndarray, validation=None) -> dict:
    """A run's calibration: fitted on its validation split, `validation` = (TTA logits, labels), and reported on the
    test set; for a run with none, fitted on one half of the test set and reported on the other."""
    if validation is not None:
        return calibrate(*validation, test_logits, test_labels, fitted_on=f"the validation split "
                         f"({len(validation[1]):,} images)", reported_on=f"the test set ({len(test_labels):,} images)")
    fit, report = held_out_halves(len(test_labels))
    return calibrate(test_logits[fit], test_labels[fit], test_logits[report], test_labels[report],
                     fitted_on=f"a random half of the test set ({len(fit):,} images, numpy seed {HALVES_SEED})",
                     reported_on=f"the other half of the test set ({len(report):,} images)")


def card_section(calibration: dict) -> str:
    """The model card's calibration section (markdown, under CARD_HEADING)."""
    before, after = calibration["before"], calibration["after"]

    def row(name, numbers):
        low, high = numbers["ece_interval"]
        return f"| {name} | {100 * numbers['ece']:.2f}% ({100 * low:.2f} to {100 * high:.2f}) | {numbers['nll']:.4f} |"

    return f"""{CARD_HEADING}

The confidence the app shows is the TTA prediction's softmax at temperature T = {calibration['temperature']:.4f}
(temperature scaling, Guo et al. 2017), fitted on {calibration['fitted_on']} and reported on
{calibration['reported_on']}. The predicted class is the same at any temperature.

| confidence | ECE, {calibration['bins']} bins (90% bootstrap interval) | NLL |
|---|---|---|
{row("raw (T = 1)", before)}
{row(f"calibrated (T = {calibration['temperature']:.3f})", after)}

No single temperature gives these images an ECE below {100 * calibration['best_temperature_ece']:.2f}%, even one chosen by
looking at them: the rest of the gap is the shape of the miscalibration (the bins a temperature cannot move together).

![reliability diagrams](calibration.png)

"""


CARD_HEADING = "## Calibration"
