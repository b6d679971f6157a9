"""The Space on ZeroGPU, rehearsed with the platform's own `spaces` package: the staged Space started with
SPACES_ZERO_GPU=true (in a session of its own, stopped as a group) against a stand-in device API that logs every
request (tests/zerogpu_server.py), its worker computing on the CPU (tests/zerogpu_cpu.py: the only part replaced).

What it proves and what only the platform can: docs/claims.md ("ZeroGPU").
"""

import math
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from gradio_client import Client, handle_file

from benchmarks.common import served
from cifar.deploy.space import stage_space
from cifar.measure import faithfulness_table
from cifar.page.endpoints import GPU_SECONDS
from cifar.page.served import ServedModels
from cifar.page.layout import TABS_WITH_ENDPOINTS
from cifar.engine.explainer import GALLERY_LAYER, GALLERY_METHOD, MISTAKE_SIDES, Explainer
from cifar.files import save_json
from cifar.runs.folder import FAITHFULNESS_FILE, load_run
from cifar.dataset import read_test_set
from tests.conftest import EXAMPLES, MODELS, ROOT
from tests.zerogpu_server import StandInDeviceApi, serving

CAT = EXAMPLES[3]
CHROMIUM = Path("/usr/bin/chromium")
QUICK, COSTLY = GPU_SECONDS["quick"], GPU_SECONDS["costly"]


@pytest.fixture(scope="module")
def space(tiny_run, tiny_robust_run, tiny_test_set, tmp_path_factory):
    """(the stand-in device API, the Space's URL, the plain app's tabs over the same models and test set)."""
    root = tmp_path_factory.mktemp("zerogpu")
    runs = [root / name for name in MODELS]  # the page's names for them are their folders' names
    shutil.copytree(tiny_run, runs[0])
    runs[1].symlink_to(tiny_robust_run, target_is_directory=True)
    store_gallery_scores(runs[0])  # as both bundled runs have them; the second run's are not stored
    stage_space(root / "space", [str(run) for run in runs], test_set=str(tiny_test_set))
    (root / "home").mkdir()
    api = StandInDeviceApi()
    with serving(api) as api_url:
        env = {"SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": api_url, "SYSTEM": "spaces",
               "HOME": str(root / "home"), "PYTHONPATH": None, "GRADIO_ANALYTICS_ENABLED": "False"}
        with served([sys.executable, str(ROOT / "tests" / "zerogpu_cpu.py")], env=env, cwd=root / "space") as (url, _):
            models = ServedModels.load({name: load_run(str(run)) for name, run in zip(MODELS, runs)},
                                       test_set=read_test_set(tiny_test_set))
            plain = {tab.__name__: tab(models) for tab in TABS_WITH_ENDPOINTS}
            yield api, url, plain


def store_gallery_scores(run: Path) -> None:
    """A faithfulness table holding the misclassified gallery's ROAD scores alone (what the table command stores for
    the gallery; its baselines would take a minute here): the run's gallery is then drawn without running a model."""
    loaded = load_run(str(run))
    gallery = {side: faithfulness_table.rounded(Explainer(loaded.model).gallery_scores(loaded.misclassified, side)[1])
               for side in MISTAKE_SIDES}
    save_json(run / FAITHFULNESS_FILE, {**faithfulness_table.settings([]), "scores": {},
                                        "misclassified": {"method": GALLERY_METHOD, "layer": GALLERY_LAYER, **gallery}})


def finite(value) -> bool:
    """No NaN or infinity anywhere in an answer's numbers (a model run outside the worker would give them)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(finite(v) for v in value)
    return True


def captions(gallery: list) -> list:
    """A gallery's captions, as the API sends it (dicts) or as a handler returns it ((picture, caption) pairs)."""
    return [item["caption"] if isinstance(item, dict) else item[1] for item in gallery]


def pixels(path) -> np.ndarray:
    return np.asarray(PIL.Image.open(path))


def test_the_space_answers_on_zero_gpu_as_the_plain_app_and_asks_for_the_gpu_the_table_says(space):
    """One test, so one Space is started (a module's tests can land on both xdist workers, each starting its own): each
    check below is a claim of docs/claims.md, run in turn on the same Space, the page's actions last in a browser."""
    api, url, plain = space
    assert api.requests[0] == ("/startup-report", {})  # at launch, after its weights were packed
    client = Client(url, verbose=False)
    every_endpoint_answers_as_the_plain_app(api, client, plain)
    only_the_work_that_runs_a_model_asks_for_a_gpu_for_as_long_as_the_table_says(api, client)
    an_error_in_the_worker_reaches_the_user_as_its_message(api, client)
    for refusal, says in REFUSALS:
        each_refusal_reaches_the_user_as_the_platforms_message(api, client, refusal, says)
    a_request_queued_for_a_gpu_is_answered_when_it_gets_one(api, client)
    if not CHROMIUM.exists():
        pytest.skip("the page's actions need Debian's chromium (.ci/run installs it); the API's checks passed")
    each_page_action_asks_for_the_gpu_time_the_table_says(api, url)


def every_endpoint_answers_as_the_plain_app(api, client, plain):
    cat = handle_file(CAT)
    workers = api.count("/allow")
    for model in MODELS:
        label, view = client.predict(cat, 10, True, model, api_name="/predict")
        expected, expected_view = plain["PredictTab"].predict(CAT, 10, True, model)
        assert {c["label"]: c["confidence"] for c in label["confidences"]} == pytest.approx(expected, abs=1e-6)
        assert (pixels(view) == pixels(expected_view)).all()
    for method in ("Grad-CAM", "Eigen-CAM"):  # with and without a backward pass (Score-CAM: /compare_methods)
        heatmap, strip, caption = client.predict(cat, "layer3", "predicted class", method, 0.5, MODELS[1],
                                                 api_name="/explain")
        expected = plain["PredictTab"].explain(CAT, "layer3", "predicted class", method, 0.5, MODELS[1])
        assert caption == expected[2] and len(strip) == 4
        assert np.abs(pixels(heatmap).astype(int) - pixels(expected[0])).max() <= 1  # JPEG of the same map
        text, scores = client.predict(cat, "layer3", "predicted class", method, MODELS[1], api_name="/faithfulness")
        assert text == plain["PredictTab"].faithfulness(CAT, "layer3", "predicted class", method, MODELS[1])[0]
        assert finite(scores) and len(scores) == 4
    _, values = client.predict(cat, "layer3", "predicted class", "Grad-CAM", MODELS[1], api_name="/metrics")
    assert values == pytest.approx(plain["HeatmapTestTab"].metrics(CAT, "layer3", "predicted class", "Grad-CAM",
                                                                   MODELS[1])[1], abs=1e-6)
    *_, numbers = client.predict(cat, "layer4", "predicted class", "Grad-CAM", "top 20% of the heatmap", None, 0.5,
                                 api_name="/cover")
    assert numbers == pytest.approx(plain["HeatmapTestTab"].cover(CAT, "layer4")[4], abs=1e-6)
    gallery, text = client.predict(cat, "runner-up", "layer4", "Grad-CAM", 0.5, api_name="/contrast")
    expected = plain["CompareTab"].contrast(CAT)
    assert (captions(gallery), text) == (captions(expected[0]), expected[1])
    gallery, _ = client.predict(cat, "layer1", "predicted class", 0.5, api_name="/compare_methods")
    assert captions(gallery) == captions(plain["CompareTab"].compare_methods(CAT, "layer1")[0])
    *_, numbers = client.predict(cat, "contrast", "layer4", "Grad-CAM", 0.5, api_name="/corruption")
    expected = plain["CorruptionsTab"].corruption(CAT, "contrast")[2]
    for name, answer in expected.items():
        assert numbers[name]["predicted"] == answer["predicted"]
        assert numbers[name]["confidence"] == pytest.approx(answer["confidence"], abs=1e-6)
        assert numbers[name]["rank_correlation"] == pytest.approx(answer["rank_correlation"], abs=1e-6)
    assert finite(numbers)
    *_, numbers = client.predict(cat, "layer4", "predicted class", "Grad-CAM", 0.5, api_name="/compare_models")
    expected = plain["SideBySideTab"].compare_models(CAT)[2]
    for name, answer in expected.items():
        assert numbers[name]["probabilities"] == pytest.approx(answer["probabilities"], abs=1e-6)
        assert numbers[name]["road"] == pytest.approx(answer["road"], abs=1e-6)
    assert finite(numbers)
    gallery, text = client.predict(5, "all", "all", True, 0.5, MODELS[1], api_name="/misclassified")
    expected = plain["MisclassifiedTab"].misclassified(5, "all", "all", True, 0.5, MODELS[1])
    assert (captions(gallery), text) == (captions(expected[0]), expected[1])
    gallery, _ = client.predict(3, "all", "all", 0.5, api_name="/mistake_evidence")
    assert captions(gallery) == captions(plain["MisclassifiedTab"].mistake_evidence(3)[0])
    choice = ("any", "any", "all", 0, 1, "Grad-CAM", "layer4", "predicted", 4, 0.5)
    gallery, _, _, shown = client.predict(*choice, api_name="/browse")
    expected = plain["TestSetTab"].browse(*choice)
    assert (captions(gallery), shown) == (captions(expected[0]), expected[3])
    with zipfile.ZipFile(client.predict(*choice, api_name="/export")) as exported, \
            zipfile.ZipFile(plain["TestSetTab"].export(*choice)) as expected:
        assert exported.read("index.csv") == expected.read("index.csv")
    asked = api.schedules()
    table, gallery, refused, _ = client.predict([cat, handle_file(str(ROOT / "README.md"))], "Grad-CAM", "layer3",
                                                api_name="/bulk")
    expected = plain["BulkTab"].bulk([CAT, str(ROOT / "README.md")], "Grad-CAM", "layer3")
    assert table["data"] == expected[0] and refused["data"] == expected[2] and captions(gallery) == captions(expected[1])
    assert api.schedules() == asked + [COSTLY]  # pictures in bulk: one request, a costly one's bound
    assert api.count("/allow") - workers <= 1  # one worker (started here, or before) served every request


def only_the_work_that_runs_a_model_asks_for_a_gpu_for_as_long_as_the_table_says(api, client):
    asked = api.schedules()
    client.predict(5, "all", "all", True, 0.5, MODELS[0], api_name="/misclassified")  # maps and scores stored
    client.predict(3, "all", "all", 0.5, MODELS[0], api_name="/mistake_evidence")
    client.predict(5, "all", "all", False, 0.5, MODELS[1], api_name="/misclassified")  # no heatmaps asked for
    assert api.schedules() == asked
    client.predict(5, "all", "all", True, 0.5, MODELS[1], api_name="/misclassified")  # its scores are not stored
    assert api.schedules() == asked + [QUICK]
    asked = api.schedules()
    client.predict(handle_file(CAT), "layer4", "predicted class", "Grad-CAM", 0.5, api_name="/explain")
    client.predict(handle_file(CAT), "layer4", "predicted class", "Score-CAM", 0.5, api_name="/explain")
    client.predict(handle_file(CAT), "layer4", "predicted class", 0.5, api_name="/compare_methods")
    assert api.schedules() == asked + [QUICK, COSTLY, COSTLY]
    with pytest.raises(Exception, match="not an image we can read"):  # answered at once, without a GPU
        client.predict(handle_file(str(ROOT / "README.md")), 3, True, api_name="/predict")
    assert api.schedules() == asked + [QUICK, COSTLY, COSTLY]


def an_error_in_the_worker_reaches_the_user_as_its_message(api, client):
    with pytest.raises(Exception, match="Eigen-CAM shows the same map for every class"):
        client.predict(handle_file(CAT), "runner-up", "layer4", "Eigen-CAM", 0.5, api_name="/contrast")
    path, params = api.requests[-1]
    assert path == "/release" and params["fail"] == "true"  # the platform is told the call failed


REFUSALS = [("quota", "Space app has reached its GPU limit"), ("no-gpu", "No GPU was available"),
            ("illegal-duration", f"The requested GPU duration ({QUICK}s) is larger than the maximum allowed")]


def each_refusal_reaches_the_user_as_the_platforms_message(api, client, refusal, says):
    api.refuse = [refusal]
    with pytest.raises(Exception, match=re.escape(says)):
        client.predict(handle_file(CAT), 3, True, api_name="/predict")
    assert api.refuse == []  # it was asked, and answered so


def a_request_queued_for_a_gpu_is_answered_when_it_gets_one(api, client):
    api.refuse = ["queue"]
    label, _ = client.predict(handle_file(CAT), 3, True, api_name="/predict")
    assert api.refuse == [] and len(label["confidences"]) == 3


def each_page_action_asks_for_the_gpu_time_the_table_says(api, url):
    """In a real browser: opening the page and its stored gallery ask for no GPU; an example click, a layer change and
    a Score-CAM choice each make one request (prediction, heatmap, strip and ROAD in one), of the table's length, and
    a quick one for the heatmap's other metrics."""
    from playwright.sync_api import expect, sync_playwright

    def after(requests: int) -> list:
        """The GPU requests once `requests` have been made and each has given its GPU back (a wait with a limit)."""
        deadline = time.monotonic() + 120
        while not (len(api.schedules()) >= requests and api.settled()):
            assert time.monotonic() < deadline, f"GPU requests so far: {api.schedules()}"
            time.sleep(0.1)
        return api.schedules()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        expect.set_options(timeout=60_000)
        before = after(0)
        page.goto(url)
        page.get_by_role("tab", name="Misclassified").click()
        expect(page.locator("#misclassified img").first).to_be_visible()  # drawn at page load
        page.get_by_role("button", name="Show", exact=True).click()
        expect(page.get_by_text("misclassified test images in all")).to_be_visible()
        assert api.schedules() == before  # a request is made before its answer shows: none was
        page.get_by_role("tab", name="Predict & explain").click()

        # Each action: one request for its stream (prediction, heatmap, strip, ROAD), then one for the heatmap's other
        # metrics, which follow its ROAD score.
        page.locator(".gallery-item").nth(3).click()  # an example
        assert after(len(before) + 2) == before + [QUICK, QUICK]
        expect(page.locator("#faithfulness")).to_contain_text("Strip: layer1")  # its last step, from that request
        expect(page.locator("#heatmap-metrics")).to_contain_text("Insertion")

        page.locator("#target-layer input").click()
        page.get_by_role("option", name="layer2", exact=True).click()
        assert after(len(before) + 4) == before + [QUICK] * 4
        expect(page.locator("#caption")).to_contain_text("at layer2")

        page.get_by_label("Score-CAM").check()
        assert after(len(before) + 6) == before + [QUICK] * 4 + [COSTLY, QUICK]
        expect(page.locator("#caption")).to_contain_text("Score-CAM")
        expect(page.locator("#stages img")).to_have_count(4)
        browser.close()
    assert api.schedules() == before + [QUICK] * 4 + [COSTLY, QUICK]  # nothing more came of them
