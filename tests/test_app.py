"""The app through its public API, as a gradio_client user sees it, on a loopback port."""

import socket
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from gradio_client import Client, handle_file

from cifar.demo import build_demo, launch
from cifar.run_folder import load_run

EXAMPLES = sorted(str(p) for p in (Path(__file__).parent.parent / "examples").glob("*.png"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tiny_run):
    demo = build_demo(load_run(str(tiny_run)), EXAMPLES)
    port = free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(app):
    return Client(app[1], verbose=False)


def test_examples_cover_every_class():
    from cifar.model import CLASSES

    assert {Path(p).stem for p in EXAMPLES} == set(CLASSES)


def test_named_api_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/predict", "/explain", "/misclassified"} <= set(endpoints)


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


def test_predict_top_k_outside_range_is_refused(client):
    with pytest.raises(Exception, match="maximum"):
        client.predict(handle_file(EXAMPLES[0]), 11, api_name="/predict")


def test_explain_returns_heatmap_and_stage_strip(client):
    heatmap, strip, caption = client.predict(handle_file(EXAMPLES[1]), "layer4.1.conv2", "cat", "Grad-CAM++", 0.6,
                                             api_name="/explain")
    assert np.asarray(PIL.Image.open(heatmap)).shape[:2] == (256, 256)
    assert [item["caption"] for item in strip] == ["layer1", "layer2", "layer3", "layer4"]
    assert "Grad-CAM++" in caption and "cat" in caption


def test_explain_opacity_zero_shows_the_image_and_one_the_heatmap(client):
    args = (handle_file(EXAMPLES[2]), "layer3", "predicted class", "Grad-CAM")
    plain = np.asarray(PIL.Image.open(client.predict(*args, 0.0, api_name="/explain")[0])).astype(int)
    heat = np.asarray(PIL.Image.open(client.predict(*args, 1.0, api_name="/explain")[0])).astype(int)
    assert np.abs(plain - heat).mean() > 20


def test_misclassified_gallery_filters_and_captions(client, tiny_run):
    wrong = np.load(tiny_run / "misclassified.npz")
    gallery, summary = client.predict(5, "all", "all", False, 0.5, api_name="/misclassified")
    assert len(gallery) == min(5, len(wrong["true"]))
    assert all("→" in item["caption"] for item in gallery)
    true_name = load_run(str(tiny_run)).classes[int(wrong["true"][0])]
    filtered, summary = client.predict(100, true_name, "all", True, 0.5, api_name="/misclassified")
    assert len(filtered) == int((wrong["true"] == wrong["true"][0]).sum())
    assert all(item["caption"].startswith(true_name + " →") for item in filtered)


def test_unknown_class_is_a_clear_error(client):
    with pytest.raises(Exception, match="unicorn is not in the list of choices"):
        client.predict(handle_file(EXAMPLES[0]), "layer4", "unicorn", "Grad-CAM", 0.5, api_name="/explain")


def test_the_served_tta_is_the_runs_unless_the_deployer_picks_another(tiny_run):
    from cifar.demo import Demo
    from cifar.inference import prepare, probabilities

    run = load_run(str(tiny_run))
    small, _ = prepare(PIL.Image.open(EXAMPLES[3]))
    for tta, accuracy in [(None, run.metrics["test_accuracy_tta"]), ("none", run.metrics["test_accuracy"])]:
        demo = Demo(run, tta)
        label, _ = demo.predict(EXAMPLES[3], 10)
        expected = probabilities(run.model, small, tta or run.metrics["tta"])
        assert [label[name] for name in run.classes] == pytest.approx(expected.tolist(), abs=1e-6)
        assert demo.test_accuracy == accuracy
    assert probabilities(run.model, small, "none") != pytest.approx(probabilities(run.model, small, "flip"), abs=1e-6)
    with pytest.raises(ValueError, match="tta must be one of"):
        Demo(run, "rotate")
