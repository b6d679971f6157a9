"""The running app through gradio_client: start-up, latency beside a bare Gradio app, and concurrent clients."""

import sys
import threading
import time

from gradio_client import Client, handle_file

from cifar.page.served import ServedModels
from cifar.page.tabs.predict import PredictTab
from cifar.runs.folder import load_run

from .common import example_paths, p50_ms, served


def bench_app(model_path, clients=16, seconds=30, tta=None):
    """The running app through gradio_client: start-up, latency, and 16 concurrent clients for 30 s.

    tta: what app.py --tta serves (default: the run's)."""
    started = time.perf_counter()
    with served([sys.executable, "app.py", "--model", model_path, *(["--tta", tta] if tta else [])]) as (url, _):
        examples = example_paths()
        client = Client(url, verbose=False)
        client.predict(handle_file(examples[0]), 1, api_name="/predict")
        print(f"{'app start to first answer':<48} {time.perf_counter() - started:8.1f} s    (target < 10 s)")
        latency = p50_ms(lambda: client.predict(handle_file(examples[0]), 3, api_name="/predict"), repeats=30)
        print(f"{'predict through the app (p50)':<48} {latency:8.1f} ms   (target <= 150 ms)")
        handler = PredictTab(ServedModels.load(load_run(model_path), tta)).predict
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


def bare_predict_ms(image, args: list) -> float:
    with served([sys.executable, "-c", BARE_APP, *args]) as (url, _):
        client = Client(url, verbose=False)
        return p50_ms(lambda: client.predict(handle_file(image), api_name="/predict"), repeats=30)


def predict_ms(url, image) -> float:
    """p50 of /predict through gradio_client: upload, queue, answer, and the download of its output image."""
    client = Client(url, verbose=False)
    return p50_ms(lambda: client.predict(handle_file(image), 3, api_name="/predict"), repeats=30)
