"""Speed benchmarks: ours and a baseline measured side by side in one run, ratios printed.

    python -m cifar.benchmark                      # everything that runs on this machine
    python -m cifar.benchmark pipeline inference   # some of it
    python -m cifar.benchmark gpu                  # training throughput on a GPU (skipped without one)
    python -m cifar.benchmark browser              # the page in headless Chromium (needs Debian's chromium)

The training parts measure the full recipe (batch 256, cutout), the one the GPU targets are about.
Timings on shared machines are noisy; the ratios, measured in the same run, are what count.
Results and the command go to BENCHMARKS.md.
"""

import argparse
import contextlib
import os
import statistics
import threading
import time

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from .config import RECIPES, make_config
from .data import ArrayDataset, EpochLoader, train_transform
from .evaluate import TTA_MODES, predict_arrays, to_model_input
from .gradcam import DEFAULT_LAYER, STAGE_LAYERS, GradCAM
from .inference import image_tensor, probabilities
from .model import ResNet18
from .training import loader_workers, make_optimizer, micro_batch_size, mixed_precision, train_step
from .files import read_json

MODEL = os.path.join(os.path.dirname(__file__), "..", "checkpoints", "resnet18-cifar10")


def original_transform():
    """The original project's per-image pipeline: rotation, cutout, flip, Normalize(0.5) on the CPU."""
    return A.Compose([A.Rotate(limit=15, border_mode=cv2.BORDER_REFLECT_101, p=0.5),
                      A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(16, 16), hole_width_range=(16, 16),
                                      fill=128, p=1.0),
                      A.HorizontalFlip(p=0.5), A.Normalize(mean=(0.5,) * 3, std=(0.5,) * 3), ToTensorV2()], seed=0)


def images(n=2048):
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def rate(fn, items, seconds=3.0):
    """items/s of fn() (each call handles `items`), after one warm-up call."""
    fn()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn()
        count += items
    return count / (time.perf_counter() - started)


def p50_ms(fn, repeats=50):
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def report(name, ours, baseline, unit, higher_is_better=True):
    ratio = ours / baseline if higher_is_better else baseline / ours
    print(f"{name:<48} ours {ours:10.1f} {unit:<9} baseline {baseline:10.1f} {unit:<9} -> {ratio:5.2f}x")


def make_step(recipe, device, channels_last, autocast=contextlib.nullcontext(), compiled=False):
    """A fresh model and optimizer for `recipe`, and a function running one training step on a batch."""
    torch.manual_seed(0)
    model = ResNet18(mean=recipe.mean, std=recipe.std).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, recipe)
    step_model = torch.compile(model) if compiled else model
    micro_batch = micro_batch_size(recipe, device, recipe.batch_size)
    return lambda batch_images, labels: train_step(step_model, optimizer, batch_images, labels, micro_batch,
                                                   recipe.label_smoothing, autocast)


def bench_pipeline():
    """Per-image CPU augmentation, single process: uint8 out (ours) vs float normalized (original)."""
    x = images()
    ours, original = train_transform(RECIPES["full"]), original_transform()
    run = lambda t: (lambda: [t(image=i)["image"] for i in x[:256]])
    report("augmentation pipeline (images/s, 1 process)", rate(run(ours), 256), rate(run(original), 256), "img/s")


def bench_train_step():
    """One SGD step on the CPU including the batch's augmentation: our recipe vs the original loop.

    A minute each: at ~5 s a step, 20 s held 4 steps and the ratio was noise."""
    x, y = images(256), torch.randint(0, 10, (256,))
    device = torch.device("cpu")

    def step_fn(config, transform, channels_last, normalize_on_cpu):
        step = make_step(config, device, channels_last)

        def augment_and_step():
            batch_images = torch.stack([transform(image=i)["image"] for i in x[:config.batch_size]])
            inputs = batch_images if normalize_on_cpu else batch_images.float().div_(255)
            if channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            step(inputs, y[:config.batch_size])
        return augment_and_step

    full = RECIPES["full"]
    # The original model took normalized input; ours normalizes inside, so feed it mean 0 / std 1 here.
    seed_unit = make_config("seed", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    ours = rate(step_fn(full, train_transform(full), True, False), full.batch_size, seconds=60)
    baseline = rate(step_fn(seed_unit, original_transform(), False, True), seed_unit.batch_size, seconds=60)
    report("CPU training (images/s, step + augmentation)", ours, baseline, "img/s")
    whole = make_config("full", micro_batch=full.batch_size)
    report("  ours: micro-batches vs the whole batch at once", ours,
           rate(step_fn(whole, train_transform(whole), True, False), full.batch_size, seconds=60), "img/s")


def bench_gpu(device=None, seconds=20.0, epoch_images=50_000, batch_size=None, compile=True):
    """Training on a GPU: the input pipeline alone, our step on a batch already on the device (eager and
    compiled), the two together over an epoch, and the original project's step on the same device.

    Target (issue #4, one H100): >= 20,000 training images/s end to end, the loader faster than the step.
    `device` and the sizes are parameters so that the test suite can run all of it on a CPU."""
    device = torch.device(device) if device else (torch.device("cuda") if torch.cuda.is_available() else None)
    if device is None:
        print("gpu: no CUDA device here, skipped (the train part measures this CPU)")
        return
    config = make_config("full", **({"batch_size": batch_size} if batch_size else {}))
    x, y = images(epoch_images), np.random.default_rng(1).integers(0, 10, epoch_images)
    workers = loader_workers(config, device)
    loader = EpochLoader(ArrayDataset(x, y, train_transform(config)), config.batch_size, config.seed, workers,
                         pin_memory=device.type == "cuda")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def epoch_rate(step=None, epoch=1):
        """images/s over one epoch of the real loader, running `step` on every batch (or nothing)."""
        started = time.perf_counter()
        for batch_images, labels in loader.epoch(epoch):
            batch_images, labels = to_model_input(batch_images, device), labels.to(device, non_blocking=True)
            if step:
                step(batch_images, labels)
        sync()
        return len(loader) * config.batch_size / (time.perf_counter() - started)

    def resident_rate(step, batch_images, labels):
        return rate(lambda: (step(batch_images, labels), sync()), len(labels), seconds)

    epoch_rate(epoch=0)  # starts the (persistent) workers
    loading = epoch_rate()
    print(f"{f'input pipeline alone ({workers} workers)':<48} {loading:10.0f} img/s")
    resident = to_model_input(torch.from_numpy(x[:config.batch_size].transpose(0, 3, 1, 2)), device)
    labels = torch.from_numpy(y[:config.batch_size]).to(device)
    ours = make_step(config, device, True, mixed_precision(device))
    eager = resident_rate(ours, resident, labels)
    print(f"{'our step, batch on the device (eager)':<48} {eager:10.0f} img/s")
    if compile:
        ours = make_step(config, device, True, mixed_precision(device), compiled=True)
        print(f"{'our step, batch on the device (torch.compile)':<48} "
              f"{resident_rate(ours, resident, labels):10.0f} img/s")
    end_to_end = epoch_rate(ours)
    print(f"{'ours end to end: loader + step, one epoch':<48} {end_to_end:10.0f} img/s  (target >= 20,000 on an H100)")
    report("  loader headroom: pipeline alone vs end to end", loading, end_to_end, "img/s")
    # The original: batch 64, fp32, NCHW; its normalization was on the CPU, so its model gets unit mean/std.
    original = make_config("seed", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    small = min(original.batch_size, config.batch_size)
    baseline = resident_rate(make_step(original, device, False),
                             resident[:small].contiguous(), labels[:small])
    report("our step vs the original's, batch on the device", eager, baseline, "img/s")


def bench_history(run_path, accuracy=0.87):
    """Time to `accuracy` on the test set, and the whole run's time, from a run folder's history.json
    (the original project: 12 epochs to 87%, ~31 s an epoch on a Colab GPU)."""
    history = read_json(os.path.join(run_path, "history.json"))
    elapsed, reached = 0.0, None
    for epoch in history["epochs"]:
        elapsed += epoch["seconds"]
        if reached is None and epoch["test_accuracy"] >= accuracy:
            reached = f"epoch {epoch['epoch']}, {elapsed:.0f} s"
    best = max(e["test_accuracy"] for e in history["epochs"])
    print(f"{os.path.normpath(run_path)} on {history['device']}: {len(history['epochs'])} epochs in {elapsed:.0f} s "
          "(training and per-epoch test evaluation)")
    print(f"{f'time to {100 * accuracy:.0f}% test accuracy':<48} "
          f"{reached or f'not reached (best {100 * best:.2f}%)'}")


def bench_inference(model_path):
    from .run_folder import load_run

    run = load_run(model_path)
    model, served_tta = run.model, run.metrics["tta"]
    image = images(1)[0]
    inputs = image_tensor(image)
    for tta in TTA_MODES:
        served = "  <- the app serves this by default" if tta == served_tta else ""
        print(f"{f'predict, one image, {tta} TTA (p50)':<48} "
              f"{p50_ms(lambda: probabilities(model, image, tta)):8.1f} ms   (target <= 15 ms){served}")
    ours_cam = lambda: GradCAM(model, DEFAULT_LAYER)(inputs)
    from pytorch_grad_cam import GradCAM as ReferenceGradCAM

    layer = dict(model.named_modules())[DEFAULT_LAYER]

    def reference():
        with ReferenceGradCAM(model=model, target_layers=[layer]) as cam:
            cam(input_tensor=inputs, targets=None)

    for tta in dict.fromkeys((served_tta, "none")):  # the default, and app.py --tta none
        explain = p50_ms(lambda: (probabilities(model, image, tta), ours_cam()))
        print(f"{f'predict ({tta} TTA) + Grad-CAM, one image (p50)':<48} {explain:8.1f} ms   (target <= 40 ms)")
    report("Grad-CAM alone vs pytorch-grad-cam (p50)", p50_ms(ours_cam), p50_ms(reference), "ms",
           higher_is_better=False)
    test_images = images(1024)
    report("test-set evaluation, default batch vs 500 (img/s)", rate(lambda: predict_arrays(model, test_images), 1024),
           rate(lambda: predict_arrays(model, test_images, batch_size=500), 1024), "img/s")
    # The app's explanation: the chosen layer plus a strip across the four stages.
    layers = (DEFAULT_LAYER, *STAGE_LAYERS)
    report("5 heatmaps in one pass vs one layer at a time (p50)", p50_ms(lambda: GradCAM(model, layers)(inputs)),
           p50_ms(lambda: [GradCAM(model, layer)(inputs) for layer in layers]), "ms", higher_is_better=False)


@contextlib.contextmanager
def served(command: list, ready="/"):
    """`command` (a Gradio server) started on a free loopback port, given in GRADIO_SERVER_PORT; yields its URL
    once it answers, and the seconds from start to that answer."""
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_PORT": str(port)})
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                urllib.request.urlopen(url + ready.lstrip("/"), timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"{' '.join(command)} exited with {server.returncode}") from None
                time.sleep(0.1)
        yield url, time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)


def example_paths() -> list:
    return sorted(os.path.join("examples", f) for f in os.listdir("examples"))


def bench_app(model_path, clients=16, seconds=30, tta=None):
    """The running app through gradio_client: start-up, latency, and 16 concurrent clients for 30 s.

    tta: what app.py --tta serves (default: the run's)."""
    import sys

    from gradio_client import Client, handle_file

    started = time.perf_counter()
    with served([sys.executable, "app.py", "--model", model_path, *(["--tta", tta] if tta else [])]) as (url, _):
        examples = example_paths()
        client = Client(url, verbose=False)
        client.predict(handle_file(examples[0]), 1, api_name="/predict")
        print(f"{'app start to first answer':<48} {time.perf_counter() - started:8.1f} s    (target < 10 s)")
        latency = p50_ms(lambda: client.predict(handle_file(examples[0]), 3, api_name="/predict"), repeats=30)
        print(f"{'predict through the app (p50)':<48} {latency:8.1f} ms   (target <= 150 ms)")
        from .handlers import Demo
        from .run_folder import load_run

        handler = Demo(load_run(model_path), tta).predict
        print(f"{'  of which our handler, in-process (p50)':<48} {p50_ms(lambda: handler(examples[0], 3)):8.1f} ms"
              "   (the rest: Gradio's upload, queue, result stream and download)")

        expected = {path: client.predict(handle_file(path), 1, api_name="/predict")[0]["label"] for path in examples}
        counts, errors, wrong = [0] * clients, [], []

        def user(i):
            me = Client(url, verbose=False)
            path = examples[i % len(examples)]
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                try:
                    label = me.predict(handle_file(path), 1, api_name="/predict")[0]["label"]
                    counts[i] += 1
                    if label != expected[path]:
                        wrong.append((path, label))
                except Exception as error:  # counted, not raised: this measures the failure rate
                    errors.append(repr(error))

        threads = [threading.Thread(target=user, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"{f'{clients} concurrent clients for {seconds} s':<48} {sum(counts) / seconds:8.1f} req/s, "
              f"{len(errors)} errors, {len(wrong)} answers for another client's image")
        for error in sorted(set(errors)):
            print(f"    error: {error[:300]}")


# The baseline of the page's API round trip: a bare Gradio app answering an uploaded image with a constant label.
# /predict's baseline: a constant label for an uploaded image; given a picture (argv[1]), it returns that picture
# too, as our /predict returns the image the model saw (a second file for the client to fetch).
BARE_APP = """
import sys
import gradio as gr
picture = sys.argv[1] if len(sys.argv) > 1 else None
with gr.Blocks() as demo:
    image, label = gr.Image(type="filepath"), gr.Label()
    if picture:
        gr.Button().click(lambda image: ({"cat": 1.0}, picture), image, [label, gr.Image()], api_name="predict")
    else:
        gr.Button().click(lambda image: {"cat": 1.0}, image, label, api_name="predict")
demo.queue().launch(server_name="127.0.0.1")
"""
CHROMIUM = "/usr/bin/chromium"


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


def page_times(browser, url, examples: int, repeats: int) -> dict:
    """p50 ms from a click until what it changes is drawn in the page (images loaded), on the page at `url`:
    an example click (label, heatmap and strip; then the score too), a change of target layer, and the Grad-CAM
    overlay on 100 misclassified images (every other click turns it on: those are timed)."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url)
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


def precomputed_answers(handlers, examples: list, folder: str) -> str:
    """Our handlers' answers for what page_times clicks, as a JSON file BARE_PAGE serves; returns its path."""
    import json

    from .handlers import PREDICTED

    clicks, scores = [], []
    for example in examples:
        label, model_view, heatmap, strip, caption = handlers.analyze(example, 3, DEFAULT_LAYER, PREDICTED, "Grad-CAM", 0.5)
        clicks.append([label, model_view, heatmap, [list(item) for item in strip], caption])
        scores.append(handlers.faithfulness(example, DEFAULT_LAYER)[0])
    picture = examples[0]  # any one: what is timed is drawing a new heatmap
    layers = ["layer3", DEFAULT_LAYER]
    answers = {"examples": examples, "clicks": clicks, "scores": scores, "layers": layers,
               "layer_changes": {name: list(handlers.refresh_heatmap(picture, name, PREDICTED, "Grad-CAM", 0.5))
                                 for name in layers},
               "layer_scores": {name: handlers.faithfulness(picture, name)[0] for name in layers},
               "gallery": {str(on): [list(item) for item in handlers.misclassified(100, with_gradcam=on)[0]]
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
    import sys
    import tempfile

    from playwright.sync_api import sync_playwright

    from .handlers import Demo
    from .run_folder import load_run

    examples = [os.path.abspath(path) for path in example_paths()]
    handlers = Demo(load_run(model_path))
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
    handler = {"click": p50_ms(lambda: handlers.analyze(examples[1], 3, DEFAULT_LAYER, "predicted class", "Grad-CAM", 0.5)),
               "layer": p50_ms(lambda: handlers.refresh_heatmap(examples[1], "layer3", "predicted class", "Grad-CAM", 0.5)),
               "gallery": p50_ms(lambda: handlers.misclassified(100, with_gradcam=True), repeats=10)}
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


def bare_predict_ms(image, args: list) -> float:
    import sys

    from gradio_client import Client, handle_file

    with served([sys.executable, "-c", BARE_APP, *args]) as (url, _):
        client = Client(url, verbose=False)
        return p50_ms(lambda: client.predict(handle_file(image), api_name="/predict"), repeats=30)


def predict_ms(url, image) -> float:
    """p50 of /predict through gradio_client: upload, queue, answer, and the download of its output image."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    return p50_ms(lambda: client.predict(handle_file(image), 3, api_name="/predict"), repeats=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*",
                        default=["pipeline", "train", "gpu", "inference", "app", "history", "browser"])
    parser.add_argument("--model", default=MODEL, help="run folder for the inference, app and history parts")
    parser.add_argument("--tta", choices=TTA_MODES, help="what the app part serves (default: the run's TTA)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU only'}")
    parts = {"pipeline": bench_pipeline, "train": bench_train_step, "gpu": bench_gpu,
             "inference": lambda: bench_inference(args.model), "app": lambda: bench_app(args.model, tta=args.tta),
             "history": lambda: bench_history(args.model), "browser": lambda: bench_browser(args.model)}
    for part in args.parts:
        parts[part]()


if __name__ == "__main__":
    main()
