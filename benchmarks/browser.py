"""The page as a user meets it, in headless Chromium: time from a click until what it changes is drawn, beside the
same page answering instantly with our answers computed beforehand."""

import json
import os
import statistics
import sys
import tempfile
import time

from playwright.sync_api import sync_playwright

from cifar.engine.explainer import DEFAULT_LAYER, DEFAULT_METHOD
from cifar.page.controls import PREDICTED
from cifar.page.served import ServedModels
from cifar.page.tabs.misclassified import MisclassifiedTab
from cifar.page.tabs.predict import PredictTab
from cifar.runs.folder import load_run

from .app import bare_predict_ms, predict_ms
from .common import CHROMIUM, example_paths, p50_ms, report, served


def wait_for_new_image(page, selector, before: str, timeout=120_000) -> str:
    """Until the img at `selector` shows a picture other than `before` (its src), fully loaded; returns its src."""
    page.wait_for_function("([selector, before]) => { const img = document.querySelector(selector); "
                           "return img && img.src !== before && img.complete && img.naturalWidth > 0; }",
                           arg=[selector, before], timeout=timeout)
    return page.locator(selector).first.get_attribute("src")


# The page's shape with nothing behind it: the same components and events as the app's, each answering instantly
# with the app's own answers, computed beforehand (argv[1], a JSON file). The page's time minus this one's is
# what our handlers and their payload cost; this one's is Gradio and the browser.
BARE_PAGE = """
import json, sys
import gradio as gr
answers = json.load(open(sys.argv[1]))
with gr.Blocks() as demo:
    with gr.Tab("Predict & explain"):
        image = gr.Image(type="filepath", elem_id="input-image")
        choice = gr.Dataset(components=[image], samples=[[path] for path in answers["examples"]], type="index")
        label, model_view = gr.Label(), gr.Image()
        layer = gr.Dropdown(answers["layers"], value=answers["layers"][-1], elem_id="target-layer")
        caption, heatmap, score = gr.Markdown(), gr.Image(elem_id="heatmap"), gr.Markdown(elem_id="faithfulness")
        strip = gr.Gallery(columns=4, elem_id="stages")
        choice.click(lambda i: [answers["examples"][i], *answers["clicks"][i]], choice,
                     [image, label, model_view, heatmap, strip, caption]).then(
            lambda i: answers["scores"][i], choice, score)
        layer.change(lambda name: answers["layer_changes"][name], layer, [heatmap, caption]).then(
            lambda name: answers["layer_scores"][name], layer, score)
    with gr.Tab("Misclassified"):
        count, overlay = gr.Slider(1, 100, value=25, step=1, elem_id="mistake-count"), gr.Checkbox(elem_id="gradcam-overlay")
        gallery = gr.Gallery(columns=5, height="auto", elem_id="misclassified")
        for control in (count, overlay):
            control.change(lambda _, on: answers["gallery"][str(on)], [count, overlay], gallery)
        demo.load(lambda: answers["gallery"]["False"], None, gallery)
demo.queue().launch(server_name="127.0.0.1")
"""


# The app computes the examples' answers in the background after it starts answering (about 10 s of the 2-core CPU,
# cifar/page/layout.py ExampleAnswers): timed clicks start after it, in the steady state a visitor meets.
STARTUP_WORK_MS = 15_000


def page_times(browser, url, examples: int, repeats: int) -> dict:
    """p50 ms from a click until what it changes is drawn in the page (images loaded), on the page at `url`:
    an example click (label, heatmap and strip; then the score too), a change of target layer, and the Grad-CAM
    overlay on 100 misclassified images (every other click turns it on: those are timed)."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url)
    page.wait_for_timeout(STARTUP_WORK_MS)
    clicks, scores = [], []
    for n in range(repeats + 1):  # the first click warms up
        before = page.locator("#heatmap img").first.get_attribute("src") if n else ""
        strip_before = page.locator("#stages img").last.get_attribute("src") if n else ""
        score_before = page.locator("#faithfulness").inner_text()
        started = time.perf_counter()
        page.locator(".gallery-item").nth(n % examples).click()
        wait_for_new_image(page, "#heatmap img", before)
        page.wait_for_function("(before) => { const imgs = [...document.querySelectorAll('#stages img')]; "
                               "return imgs.length === 4 && imgs.every(i => i.complete && i.naturalWidth > 0) "
                               "&& imgs[3].src !== before; }", arg=strip_before, timeout=60_000)
        clicks.append(1000 * (time.perf_counter() - started))
        page.wait_for_function("(before) => { const text = document.querySelector('#faithfulness').innerText; "
                               "return text.includes('ROAD') && text !== before; }", arg=score_before)
        scores.append(1000 * (time.perf_counter() - started))
        page.wait_for_timeout(200)
    changes = []
    for n in range(repeats + 1):
        layer = ("layer3", DEFAULT_LAYER)[n % 2]
        before = page.locator("#heatmap img").first.get_attribute("src")
        score_before = page.locator("#faithfulness").inner_text()
        page.locator("#target-layer input").click()
        started = time.perf_counter()
        page.get_by_role("option", name=layer, exact=True).click()
        wait_for_new_image(page, "#heatmap img", before)
        changes.append(1000 * (time.perf_counter() - started))
        page.wait_for_function("(before) => document.querySelector('#faithfulness').innerText !== before",
                               arg=score_before)
        page.wait_for_timeout(200)
    page.get_by_role("tab", name="Misclassified").click()
    page.locator("#mistake-count input[type=number]").fill("100")
    page.locator("#mistake-count input[type=number]").press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#misclassified img').length === 100", timeout=60_000)
    galleries = []
    for n in range(2 * max(repeats // 2, 2)):
        started = time.perf_counter()
        page.locator("#gradcam-overlay input").click()
        on = n % 2 == 0
        # The gallery loads its images lazily: what is drawn is what is in the window.
        page.wait_for_function("(on) => { const g = document.querySelector('#misclassified'); "
                               "const imgs = [...g.querySelectorAll('img')]; return imgs.length === 100 && "
                               "imgs.filter(i => i.getBoundingClientRect().top < window.innerHeight)"
                               ".every(i => i.complete && i.naturalWidth > 0) && "
                               "g.innerText.includes('ROAD') === on; }", arg=on, timeout=120_000)
        if on:
            galleries.append(1000 * (time.perf_counter() - started))
        page.wait_for_timeout(200)
    page.close()
    return {"click": statistics.median(clicks[1:]), "score": statistics.median(scores[1:]),
            "layer": statistics.median(changes[1:]), "gallery": statistics.median(galleries)}


def clicked(predict: PredictTab, example: str) -> tuple:
    """What the page shows of an example click before its scores: label, model view, heatmap, strip, caption."""
    steps = predict.show_all(example, 3, True, DEFAULT_LAYER, PREDICTED, DEFAULT_METHOD, 0.5)
    next(steps)  # the prediction alone
    return next(steps)[:5]


def precomputed_answers(handlers, examples: list, folder: str) -> str:
    """Our handlers' answers for what page_times clicks, as a JSON file BARE_PAGE serves; returns its path."""
    predict, misclassified = handlers
    defaults = (DEFAULT_LAYER, PREDICTED, DEFAULT_METHOD, 0.5)
    clicks, scores = [], []
    for example in examples:
        label, model_view, heatmap, strip, caption = clicked(predict, example)
        clicks.append([label, model_view, heatmap["value"], [list(item) for item in strip], caption])
        scores.append(predict.faithfulness(example, DEFAULT_LAYER)[0])
    picture = examples[0]  # any one: what is timed is drawing a new heatmap
    layers = ["layer3", DEFAULT_LAYER]
    changes = {name: next(predict.show_layer(picture, name, *defaults[1:]))[:2] for name in layers}
    answers = {"examples": examples, "clicks": clicks, "scores": scores, "layers": layers,
               "layer_changes": {name: [heatmap["value"], caption] for name, (heatmap, caption) in changes.items()},
               "layer_scores": {name: predict.faithfulness(picture, name)[0] for name in layers},
               "gallery": {str(on): [list(item) for item in misclassified.misclassified(100, with_gradcam=on)[0]]
                           for on in (False, True)}}
    path = os.path.join(folder, "answers.json")
    with open(path, "w") as file:
        json.dump(answers, file)
    return path


def bench_browser(model_path, repeats=10):
    """The page as a user meets it, in headless Chromium against `python app.py`: time from a click until what
    it changes is drawn (p50), beside the same page shape answering instantly with our precomputed answers (what
    Gradio and the browser cost) and our handler alone, in-process (what we compute); and /predict through
    gradio_client against a bare Gradio app. All measured in the same run."""
    examples = [os.path.abspath(path) for path in example_paths()]
    models = ServedModels.load(load_run(model_path))
    handlers = PredictTab(models), MisclassifiedTab(models)
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as folder:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        with served([sys.executable, "app.py", "--model", model_path]) as (url, _):
            ours = page_times(browser, url, len(examples), repeats)
            predict = predict_ms(url, examples[0])
        with served([sys.executable, "app.py", "--model", model_path, "--tta", "none"]) as (url, _):
            predict_plain = predict_ms(url, examples[0])
        with served([sys.executable, "-c", BARE_PAGE, precomputed_answers(handlers, examples, folder)]) as (bare_url, _):
            bare = page_times(browser, bare_url, len(examples), repeats)
        browser.close()
    predict, misclassified = handlers
    handler = {"click": p50_ms(lambda: clicked(predict, examples[1])),
               "layer": p50_ms(lambda: next(predict.show_layer(examples[1], "layer3", PREDICTED, DEFAULT_METHOD, 0.5))),
               "gallery": p50_ms(lambda: misclassified.misclassified(100, with_gradcam=True), repeats=10)}
    print(f"{'the page, p50 ms from the click until drawn':<48} {'ours':>8} {'same page, answers ready':>26} "
          f"{'our handler alone':>18}   target")
    rows = [("click", "example click -> label, heatmap, strip", "<= 250"), ("score", "  ... and its ROAD score", ""),
            ("layer", "target layer change -> heatmap", "<= 200"), ("gallery", "100 misclassified with Grad-CAM", "<= 1000")]
    for key, name, target in rows:
        alone = f"{handler[key]:18.0f}" if key in handler else " " * 18
        print(f"{name:<48} {ours[key]:8.0f} {bare[key]:26.0f} {alone}   {target}")
    baseline, with_picture = (bare_predict_ms(examples[0], picture) for picture in ([], [examples[1]]))
    report("/predict via gradio_client vs a bare Gradio app (p50)", predict, baseline, "ms", higher_is_better=False)
    report("  the same, app.py --tta none", predict_plain, baseline, "ms", higher_is_better=False)
    print(f"{'':<48} (target: ours within 1.3x of the bare app)")
    report("  --tta none vs the bare app returning a picture too", predict_plain, with_picture, "ms", higher_is_better=False)
