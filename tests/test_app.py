"""The app through its public API, as a gradio_client user sees it, on a loopback port."""

import math
import subprocess
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
import pytest
import torch
from gradio_client import handle_file

from benchmarks.common import served
from cifar.engine.explainer import CLASS_AGNOSTIC, Explainer
from cifar.engine.faithfulness import road
from cifar.engine.cam import METHODS, GradCAM
from cifar.engine.predict import image_tensor
from cifar.engine.pictures import load_image, prepare
from cifar.page.served import ServedModels
from cifar.page.tabs.misclassified import MisclassifiedTab
from cifar.page.tabs.predict import ExampleAnswers, PredictTab
from cifar.runs.folder import load_run

from tests.conftest import EXAMPLES, MODELS, ROOT


@contextmanager
def app_process(*args, env=None, cwd=ROOT):
    """`python app.py ARGS` in `cwd`, as a user starts it; yields its URL once it answers."""
    with served([sys.executable, "app.py", *args], env=env, cwd=cwd) as (url, _):
        yield url


def test_examples_cover_every_class():
    from cifar.engine.model import CLASSES

    assert {Path(p).stem for p in EXAMPLES} == set(CLASSES)


def test_named_api_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/predict", "/explain", "/faithfulness", "/metrics", "/cover", "/contrast", "/compare_methods", "/misclassified",
                              "/mistake_evidence", "/browse", "/export", "/corruption", "/compare_models", "/bulk",
                              "/bulk_export"}
    # Every endpoint that runs one model takes its name last, the first model by default: callers may leave it out.
    for name, endpoint in endpoints.items():
        if name not in ("/corruption", "/compare_models"):  # these two answer with every model
            last = endpoint["parameters"][-1]
            assert last["parameter_name"] == "model" and last["parameter_default"] == MODELS[0], name


def test_each_endpoint_answers_with_the_model_it_names(client, tiny_robust_run):
    """The second model's prediction is its own (a forward pass of its weights), and not the first one's."""
    run = load_run(str(tiny_robust_run))
    label, _ = client.predict(handle_file(EXAMPLES[3]), 10, True, MODELS[1], api_name="/predict")
    expected, _ = PredictTab(ServedModels.load(run)).predict(EXAMPLES[3], 10)
    assert {c["label"]: c["confidence"] for c in label["confidences"]} == pytest.approx(expected, abs=1e-5)
    default, _ = client.predict(handle_file(EXAMPLES[3]), 10, True, api_name="/predict")
    assert {c["label"]: c["confidence"] for c in default["confidences"]} != pytest.approx(expected, abs=1e-3)
    gallery, text = client.predict(3, "all", "all", False, 0.5, MODELS[1], api_name="/misclassified")
    assert text.endswith(f"({len(run.misclassified['true'])} misclassified test images in all)")


def test_an_unknown_model_is_refused_by_name(client):
    # Gradio's own check of the model chooser answers before the handler: "Value: nope is not in the list of choices".
    with pytest.raises(Exception, match="nope is not in the list of choices: \\['standard', 'robust'\\]"):
        client.predict(handle_file(EXAMPLES[3]), 3, True, "nope", api_name="/predict")
    with pytest.raises(gr.Error, match="Unknown model 'nope': this page serves a, b"):
        ServedModels([types.SimpleNamespace(name="a"), types.SimpleNamespace(name="b")])["nope"]


def test_models_side_by_side_answers_with_each_models_engine(client, tiny_run, tiny_robust_run):
    gallery, text, numbers = client.predict(handle_file(EXAMPLES[4]), "layer3", "predicted class", "Grad-CAM", 0.5,
                                            api_name="/compare_models")
    assert list(numbers) == list(MODELS) and len(gallery) == 2
    small, _ = prepare(load_image(EXAMPLES[4]))
    for name, run_dir, item in zip(MODELS, (tiny_run, tiny_robust_run), gallery):
        run = load_run(str(run_dir))
        engine = Explainer(run.model)
        chances = engine.probabilities(small, run.metrics["tta"], run.metrics["calibration"]["temperature"])
        assert numbers[name]["probabilities"] == pytest.approx(dict(zip(run.classes, chances.tolist())), abs=1e-5)
        explained = engine.explain(small, ("layer3",), "Grad-CAM", None).explained_class
        road = float(engine.faithfulness(small, ("layer3",), "Grad-CAM", None).score[0])
        assert numbers[name]["explained_class"] == run.classes[explained]
        assert numbers[name]["road"] == pytest.approx(road, abs=1e-5)
        assert item["caption"] == f"{name}: Grad-CAM for {run.classes[explained]} · ROAD {road:+.2f}"
    verdicts = {numbers[name]["predicted"] for name in MODELS}
    assert text.startswith("The models agree" if len(verdicts) == 1 else "The models disagree")


def test_predict_returns_top_k_probabilities_and_the_model_input(client):
    label, model_view = client.predict(handle_file(EXAMPLES[0]), 4, api_name="/predict")
    confidences = label["confidences"]
    assert len(confidences) == 4
    values = [c["confidence"] for c in confidences]
    assert values == sorted(values, reverse=True) and 0 < sum(values) <= 1 + 1e-6
    assert label["label"] == confidences[0]["label"]
    seen = np.asarray(PIL.Image.open(model_view))
    assert seen.shape[:2] == (256, 256)
    # Nearest-neighbour enlargement of a 32x32 image: blocks of 8x8 identical pixels.
    assert (seen[:8, :8] == seen[0, 0]).all()


@pytest.mark.parametrize("calibrated", [True, False])
def test_predict_lists_the_most_likely_classes_by_an_independent_forward_pass(client, tiny_run, calibrated):
    """Calibrated by default: the TTA logits divided by the run's temperature; the raw softmax when asked."""
    args = (handle_file(EXAMPLES[5]), 3) + (() if calibrated else (False,))
    label, _ = client.predict(*args, api_name="/predict")
    from cifar.engine.predict import tta_logits  # its views: tests/test_evaluate.py

    run = load_run(str(tiny_run))
    fitted = run.metrics["calibration"]["temperature"]
    assert fitted != pytest.approx(1.0, abs=1e-3)  # a temperature that changes what is shown
    temperature = fitted if calibrated else 1.0
    image = image_tensor(prepare(load_image(EXAMPLES[5]))[0])
    probabilities = (tta_logits(run.model, image, run.metrics["tta"]) / temperature).softmax(1)[0]
    top = probabilities.argsort(descending=True)[:3].tolist()
    assert [c["label"] for c in label["confidences"]] == [run.classes[i] for i in top]
    assert [c["confidence"] for c in label["confidences"]] == pytest.approx(probabilities[top].tolist(), abs=1e-5)


def test_the_model_is_shown_the_centre_of_a_wide_picture(client, tmp_path):
    # Three squares side by side, red, green, blue: the model sees the green one, reduced to 32x32.
    wide = np.zeros((64, 192, 3), np.uint8)
    for i in range(3):
        wide[:, 64 * i:64 * (i + 1), i] = 255
    PIL.Image.fromarray(wide).save(tmp_path / "wide.png")
    _, model_view = client.predict(handle_file(str(tmp_path / "wide.png")), 1, api_name="/predict")
    seen = np.asarray(PIL.Image.open(model_view).convert("RGB")).astype(int)
    assert np.abs(seen - [0, 255, 0]).max() <= 1


def test_predict_top_k_outside_range_is_refused(client):
    with pytest.raises(Exception, match="maximum"):
        client.predict(handle_file(EXAMPLES[0]), 11, api_name="/predict")


def test_explain_returns_heatmap_and_stage_strip(client):
    heatmap, strip, caption = client.predict(handle_file(EXAMPLES[1]), "layer4.1.conv2", "cat", "Grad-CAM++", 0.6,
                                             api_name="/explain")
    assert np.asarray(PIL.Image.open(heatmap)).shape[:2] == (256, 256)
    assert [item["caption"] for item in strip] == ["layer1", "layer2", "layer3", "layer4"]
    assert "Grad-CAM++" in caption and "cat" in caption


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_is_offered_and_explains(client, method):
    heatmap, strip, caption = client.predict(handle_file(EXAMPLES[3]), "layer3", "dog", method, 1.0,
                                             api_name="/explain")
    assert np.asarray(PIL.Image.open(heatmap)).shape[:2] == (256, 256) and len(strip) == 4
    assert method in caption
    # Eigen-CAM has no class to explain: its caption says so instead of naming one.
    assert ("same map for every class" in caption) == (method in CLASS_AGNOSTIC) and ("dog" in caption) != (method in CLASS_AGNOSTIC)


def test_explain_opacity_zero_shows_the_image_and_one_the_heatmap(client):
    args = (handle_file(EXAMPLES[2]), "layer3", "predicted class", "Grad-CAM")
    plain = np.asarray(PIL.Image.open(client.predict(*args, 0.0, api_name="/explain")[0])).astype(int)
    heat = np.asarray(PIL.Image.open(client.predict(*args, 1.0, api_name="/explain")[0])).astype(int)
    assert np.abs(plain - heat).mean() > 20


def calibrated_mistake_confidence(run_dir) -> np.ndarray:
    """Each mistake's calibrated confidence, from the stored TTA logits and temperature by a plain softmax."""
    run = load_run(str(run_dir))
    logits = run.predictions["logits_tta"][run.misclassified["index"]] / run.metrics["calibration"]["temperature"]
    return np.array([max(math.exp(v) for v in row) / sum(math.exp(v) for v in row) for row in logits.tolist()])


def test_misclassified_gallery_order_and_filters(client, tiny_run):
    wrong = np.load(tiny_run / "misclassified.npz")
    classes = load_run(str(tiny_run)).classes
    assert len(wrong["true"]) >= 5, "the tiny run must make a few mistakes for this test to compare anything"
    confidence = calibrated_mistake_confidence(tiny_run)  # as the page shows every confidence: calibrated
    assert np.abs(confidence - wrong["confidence"]).max() > 0.01  # not the raw softmax stored with them

    def expected(keep, count):
        """Captions of the `count` most confident mistakes among `keep`, computed from the npz alone."""
        order = sorted(np.flatnonzero(keep), key=lambda i: -confidence[i])[:count]
        return [f"{classes[wrong['true'][i]]} → {classes[wrong['predicted'][i]]} "
                f"{100 * confidence[i]:.0f}%" for i in order]

    everything = np.ones(len(wrong["true"]), bool)
    gallery, summary = client.predict(3, "all", "all", False, 0.5, api_name="/misclassified")
    assert [item["caption"] for item in gallery] == expected(everything, 3)
    assert summary.startswith(f"3 shown of {len(everything)} matching")
    # Filters, one at a time and together, on the classes that occur most often among the mistakes.
    true_name = classes[np.bincount(wrong["true"]).argmax()]
    predicted_name = classes[np.bincount(wrong["predicted"]).argmax()]
    for true_filter, predicted_filter in [(true_name, "all"), ("all", predicted_name), (true_name, predicted_name)]:
        keep = everything.copy()
        if true_filter != "all":
            keep &= wrong["true"] == classes.index(true_filter)
        if predicted_filter != "all":
            keep &= wrong["predicted"] == classes.index(predicted_filter)
        gallery, summary = client.predict(100, true_filter, predicted_filter, False, 0.5, api_name="/misclassified")
        assert [item["caption"] for item in gallery] == expected(keep, 100)
        assert f"of {int(keep.sum())} matching" in summary
    # The Grad-CAM overlay changes the pictures, not what is shown, and each caption gains the heatmap's ROAD
    # score: of the run's stored Grad-CAM at layer4 for the predicted class (this run has no stored table: computed
    # live; that the stored heatmaps are Grad-CAM's is checked below).
    plain, _ = client.predict(3, "all", "all", False, 0.5, api_name="/misclassified")
    overlaid, _ = client.predict(3, "all", "all", True, 0.5, api_name="/misclassified")
    order = sorted(everything.nonzero()[0], key=lambda i: -confidence[i])[:3]
    model = load_run(str(tiny_run)).model
    images = image_tensor(wrong["images"][order])
    scores = road(model, images, wrong["heatmap_predicted"][order].astype(np.float32), wrong["predicted"][order]).score
    assert [item["caption"] for item in overlaid] == [f"{item['caption']} · ROAD {score:+.2f}"
                                                      for item, score in zip(plain, scores)]
    pictures = [np.asarray(PIL.Image.open(item["image"])).astype(int) for item in (plain[0], overlaid[0])]
    assert np.abs(pictures[0] - pictures[1]).mean() > 10


def test_each_mistake_shows_the_evidence_for_its_predicted_and_true_class(client, tiny_run):
    wrong = np.load(tiny_run / "misclassified.npz")
    classes = load_run(str(tiny_run)).classes
    gallery, summary = client.predict(3, "all", "all", 0.5, api_name="/mistake_evidence")
    confidence = calibrated_mistake_confidence(tiny_run)
    order = sorted(range(len(wrong["true"])), key=lambda i: -confidence[i])[:3]
    captions = [item["caption"] for item in gallery]
    assert len(captions) == 6 and summary.startswith("3 shown of")
    for n, i in enumerate(order):
        assert captions[2 * n].startswith(f"predicted: {classes[wrong['predicted'][i]]} · ROAD ")
        assert captions[2 * n + 1].startswith(f"true: {classes[wrong['true'][i]]} · ROAD ")
    # Two different classes, two different heatmaps of the same picture.
    pair = [np.asarray(PIL.Image.open(item["image"])).astype(int) for item in gallery[:2]]
    assert np.abs(pair[0] - pair[1]).mean() > 1


def test_the_gallery_draws_the_heatmaps_stored_with_the_run_which_are_those_it_would_compute(tiny_run):
    from cifar.engine.explainer import MISTAKE_SIDES, heatmap_key

    run = load_run(str(tiny_run))
    wrong = run.misclassified
    for side in MISTAKE_SIDES:  # training stored Grad-CAM at layer4 of every mistake, for each of its two classes
        live = GradCAM(run.model, "layer4")(image_tensor(wrong["images"]), wrong[side].tolist())[0][:, 0]
        assert wrong[heatmap_key(side)].dtype == np.float16
        np.testing.assert_allclose(wrong[heatmap_key(side)], live, atol=1e-3)  # float16: 11 bits
    tab = MisclassifiedTab(ServedModels.load(run))
    stored = tab.mistake_evidence(4)
    for side in MISTAKE_SIDES:  # a run written before the heatmaps were stored: computed when asked for
        del wrong[heatmap_key(side)]
    assert tab.mistake_evidence(4) == stored  # the same pictures (files named by content) and captions


def test_every_heatmap_on_the_predict_tab_has_its_faithfulness_score(client, tiny_run):
    text, scores = client.predict(handle_file(EXAMPLES[1]), "layer4.1.conv2", "cat", "Grad-CAM",
                                  api_name="/faithfulness")
    assert list(scores) == ["layer4.1.conv2", "layer1", "layer2", "layer3", "layer4"]  # the heatmap, then the strip
    model = load_run(str(tiny_run)).model
    image = image_tensor(prepare(load_image(EXAMPLES[1]))[0])
    cat = model.classes.index("cat")
    for layer, score in scores.items():
        cam = GradCAM(model, layer)(image, cat)[0][:, 0]
        assert score == pytest.approx(float(road(model, image, cam, [cat]).score[0]), abs=1e-5)
    assert f"Faithfulness (ROAD): {scores['layer4.1.conv2']:+.2f}" in text and "P(cat)" in text
    assert f"`layer2` {scores['layer2']:+.2f}" in text


def test_why_the_prediction_and_not_another_class(client, tiny_run):
    model = load_run(str(tiny_run)).model
    image = image_tensor(prepare(load_image(EXAMPLES[1]))[0])
    with torch.no_grad():
        predicted, runner_up = (model.classes[i] for i in model(image)[0].argsort(descending=True)[:2])
    gallery, text = client.predict(handle_file(EXAMPLES[1]), "runner-up", "layer4", "Grad-CAM", 0.5, api_name="/contrast")
    captions = [item["caption"] for item in gallery]
    assert captions[0].startswith(f"evidence for {predicted} · ROAD ")
    assert captions[1].startswith(f"evidence for {runner_up} · ROAD ")
    assert captions[2].startswith(f"{predicted} rather than {runner_up} · ROAD ")
    assert f"**{predicted}**" in text and f"**{runner_up}**" in text
    gallery, _ = client.predict(handle_file(EXAMPLES[1]), "truck" if predicted != "truck" else "ship", "layer4",
                                "Grad-CAM", 0.5, api_name="/contrast")
    assert "rather than truck" in gallery[2]["caption"] or "rather than ship" in gallery[2]["caption"]
    with pytest.raises(Exception, match="predicts"):
        client.predict(handle_file(EXAMPLES[1]), predicted, "layer4", "Grad-CAM", 0.5, api_name="/contrast")
    with pytest.raises(Exception, match="same map for every class"):
        client.predict(handle_file(EXAMPLES[1]), "runner-up", "layer4", "Eigen-CAM", 0.5, api_name="/contrast")


def test_every_method_side_by_side_most_faithful_first(client, tiny_run):
    # layer1: 64 channels, the costly methods' cheapest layer (the bundled model's test below takes layer3)
    gallery, text = client.predict(handle_file(EXAMPLES[4]), "layer1", "predicted class", 0.5,
                                   api_name="/compare_methods")
    model = load_run(str(tiny_run)).model  # each method's score computed here, without the app
    image = image_tensor(prepare(load_image(EXAMPLES[4]))[0])
    scores = {}
    for name, method in METHODS.items():
        cams, logits = method(model, "layer1")(image)
        scores[name] = float(road(model, image, cams[:, 0], logits.argmax(1).cpu()).score[0])
    order = sorted(METHODS, key=lambda name: -scores[name])
    assert [item["caption"].split(" · ")[0] for item in gallery] == order
    # (on this tiny model the scores tie; tests/test_bundled_model.py checks an order that could be wrong)
    assert "layer1" in text


def test_score_cams_heatmap_does_not_wait_for_its_strip(tiny_run):
    """Score-CAM costs a forward pass per channel: the page shows the chosen layer's heatmap computed alone, then the
    strip's other stages (the chosen layer's map reused). A method that costs one pass computes them all at once."""
    from cifar.engine.explainer import STAGE_LAYERS

    tab = PredictTab(ServedModels.load(load_run(str(tiny_run))))
    explainer = tab.models.first.explainer
    asked, heatmaps = [], explainer.heatmaps
    explainer.heatmaps = lambda images, layers, *args: asked.append(tuple(layers)) or heatmaps(images, layers, *args)
    steps = tab.show_all(EXAMPLES[2], 3, True, "layer4", "predicted class", "Score-CAM", 0.5)
    next(steps)  # the prediction
    assert next(steps)[3] == [] and asked == [("layer4",)]  # the heatmap, the strip left empty
    assert len(next(steps)[3]) == 4 and asked == [("layer4",), ("layer1", "layer2", "layer3")]  # then the strip
    list(tab.show_all(EXAMPLES[2], 3, True, "layer4", "predicted class", "Grad-CAM", 0.5))
    assert asked[-1] == STAGE_LAYERS


def test_unknown_class_is_a_clear_error(client):
    with pytest.raises(Exception, match="unicorn is not in the list of choices"):
        client.predict(handle_file(EXAMPLES[0]), "layer4", "unicorn", "Grad-CAM", 0.5, api_name="/explain")


def test_the_served_tta_is_the_runs_unless_the_deployer_picks_another(tiny_run):
    from cifar.engine.pictures import prepare
    from cifar.engine.predict import probabilities

    run = load_run(str(tiny_run))
    small, _ = prepare(PIL.Image.open(EXAMPLES[3]))
    # The run's temperature was fitted on its own TTA's logits: another TTA is shown raw.
    fitted = run.metrics["calibration"]["temperature"]
    for tta, accuracy, temperature in [(None, run.metrics["test_accuracy_tta"], fitted),
                                       ("none", run.metrics["test_accuracy"], 1.0)]:
        models = ServedModels.load(run, tta)
        label, _ = PredictTab(models).predict(EXAMPLES[3], 10)
        expected = probabilities(run.model, small, tta or run.metrics["tta"], temperature)
        assert [label[name] for name in run.classes] == pytest.approx(expected.tolist(), abs=1e-6)
        assert models.first.test_accuracy == accuracy
    assert probabilities(run.model, small, "none") != pytest.approx(probabilities(run.model, small, "flip"), abs=1e-6)
    with pytest.raises(ValueError, match="tta must be one of"):
        ServedModels.load(run, "rotate")


def test_device_is_named_on_the_page_and_a_missing_gpu_is_a_clear_error(app, tiny_run):
    from cifar.device import device_name

    demo, _ = app
    header = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "header")
    assert f"Computing on: **{device_name('cpu')}**" in header.value
    if not torch.cuda.is_available():
        result = subprocess.run([sys.executable, "app.py", "--model", str(tiny_run), "--device", "cuda"],
                                capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert result.returncode != 0
        assert "no CUDA GPU" in result.stderr and "Traceback" not in result.stderr


def test_moving_between_stages_or_scoring_reuses_the_heatmaps_already_computed(tiny_run):
    """What keeps a control change fast: the strip's four stages are computed with the heatmap, so choosing
    another stage, changing the opacity or asking for the score runs no forward pass of the model."""
    demo = PredictTab(ServedModels.load(load_run(str(tiny_run))))
    forwards = []
    demo.models.first.explainer.model.register_forward_hook(lambda *args: forwards.append(1))
    first = demo.explain(EXAMPLES[2], "layer4", "predicted class", "Grad-CAM", 0.5)
    assert forwards
    forwards.clear()
    again = demo.explain(EXAMPLES[2], "layer2", "predicted class", "Grad-CAM", 0.8)
    assert forwards == [] and again[1] != first[1]  # the strip redrawn at the new opacity, the model not run
    demo.faithfulness(EXAMPLES[2], "layer4", "predicted class", "Grad-CAM")
    scored = len(forwards)
    demo.faithfulness(EXAMPLES[2], "layer2", "predicted class", "Grad-CAM")
    assert scored > 0 and len(forwards) == scored  # the strip's scores are remembered too


def test_an_example_click_at_the_default_controls_is_answered_from_start_up(tiny_run):
    models = ServedModels.load({"first": load_run(str(tiny_run)), "second": load_run(str(tiny_run))})
    tab = PredictTab(models, EXAMPLES[:2])
    tab.example_answers.thread.join()
    forwards = []
    models["first"].explainer.model.register_forward_hook(lambda *args: forwards.append(1))
    answer = list(tab.show_example(1, *ExampleAnswers.DEFAULTS, "first"))
    assert forwards == []  # made ahead, the scores that end it too
    assert answer[0][0] == EXAMPLES[1] and [step[1:] for step in answer] == list(
        tab.show_all(EXAMPLES[1], *ExampleAnswers.DEFAULTS, "first"))
    list(tab.show_example(1, 2, *ExampleAnswers.DEFAULTS[1:], "first"))  # other controls: computed for the click
    assert forwards
    others = []
    models["second"].explainer.model.register_forward_hook(lambda *args: others.append(1))
    list(tab.show_example(1, *ExampleAnswers.DEFAULTS, "second"))  # another model: its own answer, computed
    assert others


def test_the_calibrated_switch_redoes_the_prediction_alone(tiny_run):
    """The page's switch: the same classes, raw or calibrated probabilities; nothing to redo without a picture."""
    tab = PredictTab(ServedModels.load(load_run(str(tiny_run))))
    calibrated, raw = (tab.recalibrate(EXAMPLES[2], 10, switch) for switch in (True, False))
    assert calibrated == tab.predict(EXAMPLES[2], 10)[0] and raw == tab.predict(EXAMPLES[2], 10, False)[0]
    assert max(raw, key=raw.get) == max(calibrated, key=calibrated.get) and raw != pytest.approx(calibrated)
    assert isinstance(tab.recalibrate(None, 10, True), type(gr.skip()))
    served = tab.models.first
    assert f"T = {served.temperature:.2f}" in served.calibration_note()


def test_cover_asks_the_model_again_about_the_picture_covered_as_road_covers_it(client, tiny_run):
    """Everything but the top 20% of the heatmap covered: the numbers are the engine's for that covering, the picture
    shown is the one the model saw, and the slider holds the heatmap before and after."""
    from cifar.engine.faithfulness import covered, heatmap_cover

    label, text, slider, seen, numbers = client.predict(
        handle_file(EXAMPLES[3]), "layer3", "predicted class", "Grad-CAM", "everything but the top 20%", None, 0.5,
        api_name="/cover")
    served = ServedModels.load(load_run(str(tiny_run))).first
    small, _ = prepare(load_image(EXAMPLES[3]))
    explanation = served.explainer.explain(small, ("layer3",), "Grad-CAM")
    after = covered(small, heatmap_cover(explanation.maps["layer3"], 20, most_relevant=False))
    probabilities = served.probabilities(after, True)
    assert numbers["covered_share"] == pytest.approx(0.8, abs=0.01)
    assert numbers["after"] == pytest.approx(float(probabilities[explanation.explained_class]), abs=1e-5)
    assert numbers["class"] == served.classes[explanation.explained_class] and "Covered **80%**" in text
    assert label["label"] == served.classes[int(np.argmax(probabilities))]
    assert np.array_equal(np.asarray(PIL.Image.open(seen).convert("RGB"))[::8, ::8], after)
    assert len(slider) == 2 and all(np.asarray(PIL.Image.open(side)).shape[:2] == (256, 256) for side in slider)


def test_cover_takes_a_painted_mask_and_leaves_the_rest_of_the_picture_alone(client, tmp_path):
    mask = np.zeros((64, 64, 4), np.uint8)
    mask[:, :32] = 255  # the left half painted
    PIL.Image.fromarray(mask).save(tmp_path / "mask.png")
    *_, seen, numbers = client.predict(handle_file(EXAMPLES[1]), "layer4", "predicted class", "Grad-CAM",
                                       "what I painted", handle_file(str(tmp_path / "mask.png")), 0.5, api_name="/cover")
    assert numbers["covered_share"] == 0.5
    small, _ = prepare(load_image(EXAMPLES[1]))
    shown = np.asarray(PIL.Image.open(seen).convert("RGB"))[::8, ::8]
    assert np.array_equal(shown[:, 16:], small[:, 16:]) and not np.array_equal(shown[:, :16], small[:, :16])


def test_cover_says_what_is_wrong_with_a_covering_it_cannot_test(client, tmp_path):
    arguments = (handle_file(EXAMPLES[1]), "layer4", "predicted class", "Grad-CAM")
    with pytest.raises(Exception, match="Nothing painted"):
        client.predict(*arguments, "what I painted", None, 0.5, api_name="/cover")
    PIL.Image.fromarray(np.full((8, 8, 3), 255, np.uint8)).save(tmp_path / "all.png")
    with pytest.raises(Exception, match="not all of it"):
        client.predict(*arguments, "what I painted", handle_file(str(tmp_path / "all.png")), 0.5, api_name="/cover")
    with pytest.raises(Exception, match="is not in the list of choices"):  # Gradio's own check, before ours
        client.predict(*arguments, "the cat", None, 0.5, api_name="/cover")
    label, *_ = client.predict(handle_file(EXAMPLES[1]), 3, True, api_name="/predict")  # and the app still serves
    assert label["label"]


def test_every_cheap_metric_of_the_heatmap_is_the_engines_and_says_what_it_rewards(client, tiny_run):
    from cifar.engine.explainer import METRICS

    text, values = client.predict(handle_file(EXAMPLES[2]), "layer3", "predicted class", "Grad-CAM", api_name="/metrics")
    assert list(values) == list(METRICS)
    explainer = Explainer(load_run(str(tiny_run)).model)
    small, _ = prepare(load_image(EXAMPLES[2]))
    maps, classes = explainer.heatmaps(small[None], ("layer3",), "Grad-CAM")
    expected = explainer.metrics(small[None], maps, classes, "Grad-CAM", ("layer3",))
    for name, value in values.items():
        assert value == pytest.approx(float(expected[name][0, 0]), abs=1e-5), name
        assert METRICS[name][0] in text
    _, costly = client.predict(handle_file(EXAMPLES[2]), "layer1", "predicted class", "Score-CAM", api_name="/metrics")
    assert costly["ARCC"] is None and costly["Deletion"] is not None  # ARCC would run Score-CAM a second time
