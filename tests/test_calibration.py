"""Calibration (cifar/engine/calibration.py): the ECE and reliability table against a plain loop, the fitted temperature
against one known in advance, the held-out halves, and the bundled run's stored numbers against its predictions."""

import json

import numpy as np
import pytest

from cifar.engine.calibration import (BINS, expected_calibration_error, fit_temperature, reliability, run_calibration,
                                      scaled_probabilities, held_out_halves)
from tests.conftest import ROOT, needs_test_set, read_test_set

BUNDLED = ROOT / "checkpoints" / "resnet18-cifar10"


def ece_by_a_plain_loop(probabilities, labels, bins=BINS):
    """Guo et al.'s definition, image by image: bin m holds confidences in ((m - 1) / M, m / M]."""
    total = 0.0
    for m in range(1, bins + 1):
        members = [i for i in range(len(labels)) if (m - 1) / bins < probabilities[i].max() <= m / bins]
        if members:
            accuracy = sum(probabilities[i].argmax() == labels[i] for i in members) / len(members)
            confidence = sum(probabilities[i].max() for i in members) / len(members)
            total += len(members) / len(labels) * abs(accuracy - confidence)
    return total


def test_ece_equals_a_plain_loop_over_the_images():
    rng = np.random.default_rng(0)
    probabilities = scaled_probabilities(rng.normal(0, 3, (500, 10)))
    labels = rng.integers(0, 10, 500)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(ece_by_a_plain_loop(probabilities, labels),
                                                                               abs=1e-12)


def test_a_confidence_on_a_bin_edge_belongs_to_the_lower_bin():
    probabilities = np.array([[2 / 15, 13 / 15] + [0] * 8, [1 / 15, 14 / 15] + [0] * 8])
    table = reliability(probabilities, np.array([1, 0]))
    assert table["count"][12] == 1 and table["count"][13] == 1  # 13/15 closes bin 13 (index 12), 14/15 bin 14
    assert table["accuracy"][12] == 1 and table["accuracy"][13] == 0


def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_at():
    """Labels drawn from softmax(logits / 2): the maximum-likelihood temperature is 2, up to sampling noise."""
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, (20_000, 10))
    labels = np.array([rng.choice(10, p=p) for p in scaled_probabilities(logits, 2.0)])
    assert fit_temperature(logits.astype(np.float32), labels) == pytest.approx(2.0, rel=0.03)
    # and the scaled probabilities are calibrated where the raw ones are not
    assert expected_calibration_error(scaled_probabilities(logits, 2.0), labels) < 0.02
    assert expected_calibration_error(scaled_probabilities(logits), labels) > 0.1


def test_the_halves_are_disjoint_fixed_and_cover_the_test_set():
    fit, report = held_out_halves(10_000)
    assert len(fit) == len(report) == 5_000 and not set(fit) & set(report)
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, report])), np.arange(10_000))
    np.testing.assert_array_equal(held_out_halves(10_000)[0], fit)


def test_a_validation_split_fits_the_temperature_and_the_whole_test_set_reports():
    rng = np.random.default_rng(2)
    val_logits, test_logits = rng.normal(0, 3, (200, 10)), rng.normal(0, 3, (100, 10))
    val_labels, test_labels = val_logits.argmax(1), rng.integers(0, 10, 100)
    calibration = run_calibration(test_logits, test_labels, (val_logits, val_labels))
    assert calibration["temperature"] == pytest.approx(fit_temperature(val_logits, val_labels))
    assert calibration["after"]["ece"] == pytest.approx(
        ece_by_a_plain_loop(scaled_probabilities(test_logits, calibration["temperature"]), test_labels))
    assert "validation split (200 images)" in calibration["fitted_on"] and "100 images" in calibration["reported_on"]


def test_without_a_validation_split_one_half_fits_and_the_other_reports():
    """Labels drawn at temperature 2 on one half and 0.5 on the other: the stored T is the fitting half's."""
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 3, (4000, 10))
    fit, report = held_out_halves(len(logits))
    labels = np.zeros(len(logits), np.int64)
    for half, temperature in ((fit, 2.0), (report, 0.5)):
        labels[half] = [rng.choice(10, p=p) for p in scaled_probabilities(logits[half], temperature)]
    calibration = run_calibration(logits, labels)
    assert calibration["temperature"] == pytest.approx(fit_temperature(logits[fit], labels[fit]))
    assert calibration["temperature"] == pytest.approx(2.0, rel=0.1)
    assert calibration["after"]["ece"] == pytest.approx(
        ece_by_a_plain_loop(scaled_probabilities(logits[report], calibration["temperature"]), labels[report]))


def test_temperature_never_changes_the_predicted_class():
    logits = np.random.default_rng(3).normal(0, 3, (1000, 10))
    for temperature in (0.3, 0.68, 1.0, 4.0):
        np.testing.assert_array_equal(scaled_probabilities(logits, temperature).argmax(1), logits.argmax(1))


@needs_test_set
def test_the_bundled_runs_calibration_is_what_its_predictions_give():
    """The stored temperature, ECE and NLL are recomputed from predictions.npz and the test labels, fitted on one half
    of the test set and reported on the other; the raw ECE is the 8% the Training tab shows, the calibrated one the
    number the README states (1.38%: above the 1% asked for, see docs/claims.md)."""
    stored = json.loads((BUNDLED / "metrics.json").read_text())["calibration"]
    with np.load(BUNDLED / "predictions.npz") as predictions:
        logits = predictions["logits_tta"]
    _, labels = read_test_set()
    fit, report = held_out_halves(len(labels))
    assert stored["temperature"] == pytest.approx(fit_temperature(logits[fit], labels[fit]), rel=1e-6)
    calibrated = scaled_probabilities(logits[report], stored["temperature"])
    assert stored["after"]["ece"] == pytest.approx(ece_by_a_plain_loop(calibrated, labels[report]), abs=1e-9)
    assert stored["before"]["ece"] == pytest.approx(
        ece_by_a_plain_loop(scaled_probabilities(logits[report]), labels[report]), abs=1e-9)
    assert round(100 * stored["before"]["ece"], 2) == 8.14 and round(100 * stored["after"]["ece"], 2) == 1.38
    assert stored["after"]["nll"] < stored["before"]["nll"]
    # No temperature reaches 1% on these images: the floor, found by trying them all, is 1.27%.
    assert round(100 * stored["best_temperature_ece"], 2) == 1.27 <= round(100 * stored["after"]["ece"], 2)
    assert (BUNDLED / "calibration.png").is_file() and "## Calibration" in (BUNDLED / "README.md").read_text()


def test_the_command_recalibrates_a_run_from_its_predictions(tiny_run, tiny_data_dir, tmp_path):
    import shutil

    from cifar.engine import calibration
    from cifar.measure import recalibrate

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["calibration"]  # a run from before calibration came
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "calibration.png").unlink()
    recalibrate.main([str(run), "--data-dir", str(tiny_data_dir)])
    written = json.loads((run / "metrics.json").read_text())
    assert written["calibration"] == json.loads((tiny_run / "metrics.json").read_text())["calibration"]
    assert written["test_accuracy"] == metrics["test_accuracy"] and (run / "calibration.png").is_file()
    assert (run / "README.md").read_text().count(calibration.CARD_HEADING) == 1
