"""The page itself, in a real headless Chromium, against `python app.py` on loopback, as a user sees it.

UPDATE_SCREENSHOTS=1 also writes the README's screenshots (docs/screenshots/*.png).
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from cifar.engine.explainer import DEFAULT_LAYER

from tests.conftest import EXAMPLES, TEST_SET, needs_test_set
from tests.test_app import app_process

ROOT = Path(__file__).parent.parent
BUNDLED = ("resnet18-cifar10", "resnet18-cifar10-robust")  # the models `python app.py` serves, the default first
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else None

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)")


@pytest.fixture(scope="module")
def app_url():
    with app_process(*(["--test-set", str(TEST_SET)] if TEST_SET.exists() else [])) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # Every check waits up to 60 s (Playwright's default is 5): on a busy 2-core machine one answer can take that
    # long (beside the other test worker's heaviest tests, the page's first action took over 30 s), and a wait ends
    # as soon as its check holds, so a healthy page costs nothing more.
    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh page for every test: no test sees what another one clicked."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(app_url)
    yield page
    page.close()


def screenshot(page, name):
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def image_loaded(locator, timeout_ms=60_000) -> bool:
    """Whether the <img> finishes loading a real picture. Visible is not loaded: on a busy machine the bytes
    can still be on their way when the element shows, so wait for them (a broken image never gets a width)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        locator.page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                       arg=locator.element_handle(), timeout=timeout_ms)
    except PlaywrightTimeout:
        return False
    return True


def brush_stroke(page, editor: str, start: tuple, step, steps: int, wait_ms: int) -> None:
    """A stroke of the brush on the gr.ImageEditor `editor`: from `start` (shares of its canvas), `steps` moves of
    `step(canvas box)` pixels each."""
    from playwright.sync_api import expect

    canvas = page.locator(f"{editor} canvas").first
    expect(canvas).to_be_visible()
    page.wait_for_timeout(wait_ms)  # the editor draws the picture it was handed before it takes strokes
    page.locator(editor).get_by_role("button", name="Brush").first.click()
    box = canvas.bounding_box()
    (x, y), (dx, dy) = (box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1]), step(box)
    page.mouse.move(x, y)
    page.mouse.down()
    for number in range(1, steps + 1):
        page.mouse.move(x + dx * number, y + dy * number)
    page.mouse.up()


def test_example_click_shows_prediction_and_heatmap(page):
    from playwright.sync_api import expect

    page.locator(".gallery-item").nth(3).click()  # the cat example
    heatmap = page.locator("#heatmap img").first
    expect(heatmap).to_be_visible()
    assert image_loaded(heatmap)
    expect(page.locator("#prediction")).to_contain_text("%")  # rendered, which may be a frame after the heatmap
    prediction = page.locator("#prediction").inner_text()
    assert any(name in prediction for name in ("airplane", "cat", "dog", "frog", "truck", "ship", "bird", "deer",
                                               "horse", "automobile"))
    assert "%" in prediction
    expect(page.locator("#stages img")).to_have_count(4)
    expect(page.locator("#caption")).to_contain_text(f"at {DEFAULT_LAYER}")
    screenshot(page, "predict")


def test_a_small_picture_fills_the_input_box(page):
    # The cat example is 32x32: it is drawn scaled up to the box, not at 32 px in the middle of an empty one.
    import io

    import numpy as np
    import PIL.Image
    from playwright.sync_api import expect

    page.locator(".gallery-item").nth(3).click()
    expect(page.locator("#heatmap img").first).to_be_visible()  # the click has been handled
    shown = page.locator("#input-image img")
    assert image_loaded(shown)
    drawn = PIL.Image.open(io.BytesIO(shown.screenshot())).convert("RGB")
    assert min(drawn.size) >= 150
    cat = PIL.Image.open(ROOT / "examples" / "cat.png").convert("RGB").resize(drawn.size, PIL.Image.Resampling.BILINEAR)
    difference = np.abs(np.asarray(drawn, dtype=int) - np.asarray(cat, dtype=int)).mean()
    assert difference < 20, f"the input box does not show the picture at its size (mean difference {difference:.0f})"


def test_training_tab_shows_curves_and_metrics(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Training").click()
    curves = page.locator("#accuracy-curve img").first
    expect(curves).to_be_visible()
    assert image_loaded(curves)
    served_tta = json.loads((ROOT / "checkpoints" / "resnet18-cifar10" / "metrics.json").read_text())["tta"]
    expect(page.get_by_text(f"with {served_tta} TTA")).to_be_visible()
    expect(page.get_by_text("Per-class accuracy")).to_be_visible()
    reliability = page.locator("#reliability img").first  # the reliability diagrams, raw and calibrated
    reliability.scroll_into_view_if_needed()
    expect(reliability).to_be_visible()
    assert image_loaded(reliability)
    expect(page.get_by_text("expected calibration error, raw → calibrated")).to_be_visible()
    expect(page.locator("#corruptions")).to_contain_text("Corrupted pictures (CIFAR-10-C)")  # the run's table
    screenshot(page, "training")


def test_misclassified_tab_shows_captioned_gallery(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Misclassified").click()
    expect(page.get_by_text("misclassified test images in all")).to_be_visible()
    expect(page.locator("#misclassified img").first).to_be_visible()
    expect(page.locator("#misclassified").get_by_text("→").first).to_be_visible()
    screenshot(page, "misclassified")


def test_the_heatmaps_faithfulness_score_follows_it(page):
    from playwright.sync_api import expect

    page.locator(".gallery-item").nth(3).click()
    expect(page.locator("#heatmap img").first).to_be_visible()
    score = page.locator("#faithfulness")
    expect(score).to_contain_text("Faithfulness (ROAD):")
    expect(score).to_contain_text("Strip: layer1")
    expect(score).to_contain_text("random maps")  # the bundled run's table gives the method's average beside it
    metrics = page.locator("#heatmap-metrics")  # then every cheap metric, each with what it rewards
    expect(metrics).to_contain_text("Insertion")
    expect(metrics).to_contain_text("mean of 30 test pictures")


def test_the_compare_tab_fills_itself_for_the_current_picture(page):
    from playwright.sync_api import expect

    from cifar.engine.cam import METHODS

    page.get_by_role("tab", name="Compare").click()  # no picture yet: it says what to do first
    expect(page.get_by_text("Upload a picture (or click an example)")).to_be_visible()
    page.get_by_role("tab", name="Predict & explain").click()
    page.locator(".gallery-item").nth(3).click()
    expect(page.locator("#heatmap img").first).to_be_visible()
    page.get_by_role("tab", name="Compare").click()  # opened: both filled, no button pressed
    expect(page.locator("#contrast img")).to_have_count(3)
    expect(page.locator("#contrast").get_by_text("rather than")).to_be_visible()
    # Score-CAM is one forward pass per channel: a few seconds at layer4 on a 2-core CPU, more on a busy one.
    expect(page.locator("#all-methods img")).to_have_count(len(METHODS), timeout=120_000)
    expect(page.locator("#all-methods").get_by_text("Score-CAM · ROAD")).to_be_visible()
    screenshot(page, "compare")


def test_the_heatmaps_label_names_its_method_and_layer(page):
    from playwright.sync_api import expect

    page.locator(".gallery-item").nth(3).click()
    expect(page.locator("#heatmap img").first).to_be_visible()
    expect(page.locator("#heatmap")).to_contain_text(f"Grad-CAM at {DEFAULT_LAYER}")
    page.get_by_label("LayerCAM").check()
    expect(page.locator("#heatmap")).to_contain_text(f"LayerCAM at {DEFAULT_LAYER}")
    expect(page.locator("#caption")).to_contain_text("LayerCAM for")


def test_misclassified_tab_shows_the_evidence_for_both_classes(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Misclassified").click()
    expect(page.get_by_text("misclassified test images in all")).to_be_visible()
    page.get_by_role("button", name="Evidence: predicted class beside true class").click()
    expect(page.locator("#mistake-evidence img")).to_have_count(50, timeout=60_000)  # 25 mistakes, two maps each
    expect(page.locator("#mistake-evidence").get_by_text("true:").first).to_be_visible()
    expect(page.locator("#mistake-evidence").get_by_text("predicted:").first).to_be_visible()


def test_faithfulness_tab_shows_the_runs_table(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Faithfulness").click()
    table = page.locator("#faithfulness-table")
    # Which method to trust for what, then the table of every metric (a table per layer), then ROAD on more pictures.
    expect(table.get_by_text("Which method to trust for what")).to_be_visible()
    expect(table.get_by_role("cell", name="Grad-CAM (blurred)", exact=True).first).to_be_visible()
    expect(table.get_by_role("columnheader", name="Insertion").first).to_be_visible()
    expect(table.get_by_role("cell", name="Random", exact=True).last).to_be_visible()
    expect(table.get_by_role("cell", name="Grad-CAM", exact=True).last).to_be_visible()
    for baseline in ("Sobel edges", "Centre blob"):
        expect(table.get_by_role("cell", name=baseline, exact=True).last).to_be_visible()
    sanity = page.locator("#randomization-table")
    expect(sanity.get_by_role("cell", name="Grad-CAM++", exact=True)).to_be_visible()
    plot = page.locator("#randomization img").first
    plot.scroll_into_view_if_needed()
    expect(plot).to_be_visible()
    assert image_loaded(plot)
    screenshot(page, "faithfulness")


@needs_test_set
def test_the_test_set_tab_browses_and_exports_the_selection(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Test set").click()
    page.get_by_label("wrong").check()
    page.get_by_role("button", name="Show", exact=True).click()
    gallery = page.locator("#test-set")
    expect(gallery.locator("img")).to_have_count(25, timeout=60_000)
    expect(gallery.get_by_text("✗").first).to_be_visible()
    expect(page.locator("#test-set-summary")).to_contain_text("25 shown of")
    expect(page.locator("#class-heatmaps")).to_contain_text("central quarter")  # each class's, from the run
    screenshot(page, "test-set")
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Export the selection (ZIP)").click()
        page.locator("#test-set-export").get_by_role("link").first.click(timeout=120_000)
    assert download.value.suggested_filename.endswith(".zip")


def test_the_corruptions_tab_shows_every_severity_for_both_models(page):
    from playwright.sync_api import expect

    page.locator(".gallery-item").nth(3).click()
    expect(page.locator("#heatmap img").first).to_be_visible()
    page.get_by_role("tab", name="Corruptions").click()
    page.get_by_role("button", name="Corrupt").click()
    # Six pictures, then six heatmaps for each model.
    expect(page.locator("#corruption img")).to_have_count(6 * (1 + len(BUNDLED)), timeout=60_000)
    for name in BUNDLED:
        expect(page.locator("#corruption").get_by_text(f"{name}: ").last).to_contain_text("· ρ")
        expect(page.locator("#corruption-text")).to_contain_text(f"{name} keeps")
    screenshot(page, "corruptions")


def test_choosing_the_robust_model_changes_every_answer_on_the_page(page):
    from playwright.sync_api import expect

    page.locator(".gallery-item").nth(3).click()
    expect(page.locator("#heatmap img").first).to_be_visible()
    expect(page.locator("#model-summary")).to_contain_text("trained from scratch")
    page.locator("#model-choice input").click()
    page.get_by_role("option", name=BUNDLED[1]).click()
    expect(page.locator("#model-summary-1")).to_contain_text("fine-tuned from checkpoints/resnet18-cifar10")
    expect(page.locator("#model-summary")).to_be_hidden()
    robust = json.loads((ROOT / "checkpoints" / BUNDLED[1] / "metrics.json").read_text())
    # The picture's answers are redone by the robust model: the caption comes back with the heatmap.
    expect(page.locator("#caption")).to_contain_text(f"at {DEFAULT_LAYER}")
    # Its mistakes, not the standard model's: the two differ in number.
    page.get_by_role("tab", name="Misclassified").click()
    mistakes = round(10_000 * (1 - robust["test_accuracy_tta"]))
    expect(page.get_by_text(f"({mistakes} misclassified test images in all)")).to_be_visible()
    page.get_by_role("tab", name="Training").click()
    expect(page.locator("#corruptions-1")).to_contain_text(f"{100 * robust['corruptions']['mean']:.1f}% mean")
    expect(page.locator("#corruptions")).to_be_hidden()
    screenshot(page, "robust-model")


def test_the_models_side_by_side_tab_shows_both_predictions_and_heatmaps(page):
    from playwright.sync_api import expect

    page.locator(".gallery-item").nth(3).click()
    expect(page.locator("#heatmap img").first).to_be_visible()
    page.get_by_role("tab", name="Models side by side").click()
    expect(page.locator("#models-side-by-side img")).to_have_count(len(BUNDLED), timeout=60_000)
    for name in BUNDLED:
        expect(page.locator("#models-text").get_by_role("cell", name=name, exact=True)).to_be_visible()
        expect(page.locator("#models-side-by-side").get_by_text(f"{name}: Grad-CAM for")).to_be_visible()
    screenshot(page, "models-side-by-side")


def test_painting_over_the_picture_asks_the_model_again_and_shows_the_heatmap_before_and_after(page):
    """Test the heatmap yourself: the cat, a brush stroke across it, "Cover and ask again": the new prediction, the
    share covered, and the slider's two heatmaps (before, after)."""
    from playwright.sync_api import expect

    page.locator(".gallery-item").nth(3).click()
    expect(page.locator("#heatmap img").first).to_be_visible()
    page.locator("#cover-test").get_by_text("Test the heatmap yourself").click()
    page.get_by_role("button", name="Paint on this picture").click()
    brush_stroke(page, "#paint", (0.35, 0.3), lambda box: (6, 4), 19, wait_ms=500)
    page.locator("#covering").get_by_text("what I painted").click()
    page.locator("#cover-run").click()
    text = page.locator("#cover-text")
    expect(text).to_contain_text("(what I painted)")
    expect(text).to_contain_text("The model now says")
    covered = float(text.inner_text().split("Covered ")[1].split("%")[0])
    assert 2 <= covered <= 60, text.inner_text()  # the stroke, not nothing and not the whole picture
    expect(page.locator("#cover-prediction")).to_contain_text("%")
    before_after = page.locator("#cover-slider img")
    expect(before_after).to_have_count(2)
    assert all(image_loaded(before_after.nth(i)) for i in range(2))
    assert image_loaded(page.locator("#cover-seen img").first)
    screenshot(page, "cover")


def test_painting_an_area_of_the_test_set_map_shows_its_images(page):
    """The Test-set map tab: a stroke across the map, "Show the painted area": the area's summary and, with the test
    set, its images with their heatmaps (mistakes first); without it, what the pictures need."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Test-set map").click()
    # The map as the page opens (coloured by true class): a change of colouring hands the editor a new map, which would
    # wipe a stroke painted before it arrives (each colouring is drawn and checked in test_test_map.py).
    # A diagonal across the map, through several clusters.
    brush_stroke(page, "#map-paint", (0.2, 0.2), lambda box: (box["width"] * 0.015, box["height"] * 0.015), 39,
                 wait_ms=1000)
    page.locator("#map-show").click()
    summary = page.locator("#map-summary")
    expect(summary).to_contain_text("test images in the area", timeout=60_000)
    in_area = int(summary.inner_text().split(" test images")[0])
    assert 10 <= in_area <= 9000, summary.inner_text()  # the stroke's points: not none, not the whole map
    expect(summary).to_contain_text("resnet18-cifar10-robust answers otherwise on")
    if TEST_SET.exists():
        gallery = page.locator("#map-gallery")
        expect(gallery.locator("img")).to_have_count(min(25, in_area), timeout=60_000)
        assert gallery.locator("img").first.get_attribute("src")
        expect(gallery.get_by_text("#").first).to_be_visible()
        assert image_loaded(gallery.locator("img").first)
    else:
        expect(summary).to_contain_text("Start the app with --test-set")
    screenshot(page, "test-set-map")


def test_many_pictures_at_once_fill_the_table_and_the_gallery(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Your pictures").click()
    page.locator("#bulk-files input[type=file]").set_input_files(EXAMPLES[:4])
    page.get_by_role("button", name="Classify them all").click()
    expect(page.locator("#bulk-summary")).to_contain_text("4 pictures answered, 0 files refused", timeout=60_000)
    expect(page.locator("#bulk-table")).to_contain_text("airplane.png")
    expect(page.locator("#bulk-gallery img")).to_have_count(4)
    page.get_by_text("most confident first").click()  # the order changes: answered again, sorted
    expect(page.locator("#bulk-summary")).to_contain_text("sorted by most confident first")
    expect(page.locator("#bulk-gallery img")).to_have_count(4)
    screenshot(page, "your-pictures")
