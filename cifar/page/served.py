"""The models one page serves (python app.py --model A B), each built once at start-up: its run, its explanation
engine, the test-time augmentation it predicts with and the temperature that calibrates it, its mistakes' confidences
and, when the page browses the test set, its answers there. The tabs ask these and keep nothing of their own.

Every endpoint that answers with one model takes its name last, `model`; left out (None), the first model answers.
Everything else the page shows of a model (curves, tables, card) is drawn once per model and shown for the chosen one.
"""

import hashlib
from functools import cached_property

import gradio as gr
import numpy as np

from cifar.engine.calibration import scaled_probabilities
from cifar.engine.explainer import MISTAKE_SIDES, Explainer, heatmap_key
from cifar.engine.model import WEIGHTS_NAME
from cifar.engine.predict import check_tta
from cifar.engine.test_set import TestSet
from cifar.runs.folder import Run


class ServedModel:
    """One run as the page serves it."""

    def __init__(self, name: str, run: Run, tta: str | None = None, test_set: tuple | None = None):
        """`tta`: the run's own unless the deployer trades it for latency (app.py --tta); `test_set`: (images,
        labels), read once for every model, when the page browses it."""
        self.name, self.run, self.classes = name, run, run.classes
        self.explainer = Explainer(run.model)
        self.tta = tta or run.metrics["tta"]
        check_tta(self.tta)  # at start-up, not at the first request
        # The confidence shown is calibrated by the run's temperature (cifar/engine/calibration.py), fitted on the
        # logits of the run's own TTA: served with another, or from a run without one, it is shown raw.
        calibration = run.metrics.get("calibration")
        self.temperature = calibration["temperature"] if calibration and self.tta == run.metrics["tta"] else None
        # The mistakes' confidences as every other the page shows: calibrated, from the logits stored with the run; a
        # run without them, or served with another TTA, shows the softmax stored with its mistakes.
        wrong = run.misclassified
        self.mistake_confidence = wrong["confidence"]
        if self.temperature and run.predictions is not None:
            logits = run.predictions["logits_tta"][wrong["index"]]
            self.mistake_confidence = scaled_probabilities(logits, self.temperature).max(1).astype(np.float32)
        self.test_set = None if test_set is None else self._on_the_test_set(*test_set)

    def _on_the_test_set(self, images, labels) -> TestSet:
        """The test set with this model's answers: the run's stored logits when they are the served TTA's (a
        TestSetError if they are not this test set's), else computed at the first request that needs them."""
        stored = self.run.predictions or {}
        logits = {self.run.metrics["tta"]: stored.get("logits_tta"), "none": stored.get("logits")}.get(self.tta)
        return TestSet(images, labels, self.classes, self.explainer, self.tta, logits, self.temperature)

    @cached_property
    def identity(self) -> dict:
        """What an export names the model by: its run folder and its weights' hash (hashed once, at the first export)."""
        weights = hashlib.sha256((self.run.path / WEIGHTS_NAME).read_bytes()).hexdigest()
        return {"run": str(self.run.path), "weights_sha256": weights}

    @property
    def test_accuracy(self) -> float:
        """The test accuracy of what is served: the run's TTA, or plain (the lower figure) for another."""
        metrics = self.run.metrics
        return metrics["test_accuracy_tta"] if self.tta == metrics["tta"] else metrics["test_accuracy"]

    @property
    def stores_gallery(self) -> bool:
        """The misclassified gallery's heatmaps and their ROAD scores are stored with the run (both bundled runs): the
        gallery is drawn without running the model."""
        wrong, stored = self.run.misclassified, (self.run.faithfulness or {}).get("misclassified") or {}
        return all(heatmap_key(side) in wrong and len(stored.get(side, ())) == len(wrong[side])
                   for side in MISTAKE_SIDES)

    def probabilities(self, small: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """(classes,) for one 32x32 picture with the served TTA, calibrated by the temperature when asked and there is one."""
        temperature = self.temperature if calibrated and self.temperature else 1.0
        return self.explainer.probabilities(small, self.tta, temperature)

    def calibration_note(self) -> str:
        """What the page's calibrated/raw switch says about the confidence it shows."""
        if self.temperature is None:
            return "Raw softmax: this run has no temperature fitted for the test-time augmentation served."
        calibration = self.run.metrics["calibration"]
        return (f"Temperature scaling, T = {self.temperature:.2f}: expected calibration error "
                f"{100 * calibration['before']['ece']:.1f}% raw, {100 * calibration['after']['ece']:.1f}% calibrated, "
                f"on {calibration['reported_on']} (fitted on {calibration['fitted_on']}). Untick for the raw softmax.")


class ServedModels:
    """The served models by name, the first the default."""

    def __init__(self, models: list):
        self.by_name = {model.name: model for model in models}
        self.names = list(self.by_name)
        self.default = self.names[0]

    @classmethod
    def load(cls, runs: dict | Run, tta: str | None = None, test_set: tuple | None = None) -> "ServedModels":
        """{name: run} (or one run, named by its folder), served with `tta` (None: each run's own)."""
        runs = runs if isinstance(runs, dict) else {runs.path.name: runs}
        return cls([ServedModel(name, run, tta, test_set) for name, run in runs.items()])

    @property
    def first(self) -> ServedModel:
        return self.by_name[self.default]

    def __iter__(self):
        return iter(self.by_name.values())

    def __getitem__(self, name: str | None) -> ServedModel:
        """The model a request names (None: the first), or a message naming those there are."""
        if name is None:
            return self.first
        if name not in self.by_name:
            raise gr.Error(f"Unknown model {name!r}: this page serves {', '.join(self.names)}.")
        return self.by_name[name]


class OnePerModel:
    """Parts of the page drawn once per model (inside the page's Blocks), in columns of which only the chosen model's
    is visible: `for name in shown.each(): ...draw name's...`, then `shown.follow(chooser)` once."""

    def __init__(self, names: list):
        self.names, self.columns = names, []

    def each(self):
        for name in self.names:
            with gr.Column(visible=name == self.names[0]) as column:
                self.columns.append((name, column))
                yield name

    def id(self, element: str, name: str) -> str:
        """An element's id: the default model's has the plain one (a page has each id once)."""
        return element if name == self.names[0] else f"{element}-{self.names.index(name)}"

    def follow(self, chooser: gr.Dropdown) -> None:
        if len(self.names) > 1:
            chooser.change(lambda chosen: [gr.Column(visible=name == chosen) for name, _ in self.columns], chooser,
                           [column for _, column in self.columns], api_visibility="private", queue=False)


def draw_each(models: ServedModels, chooser: gr.Dropdown, draw) -> None:
    """draw(served model, shown) once per model (inside the page's Blocks), the one `chooser` names shown."""
    shown = OnePerModel(models.names)
    for name in shown.each():
        draw(models[name], shown)
    shown.follow(chooser)
