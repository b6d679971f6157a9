"""The Space in ZeroGPU mode, as the tests rehearse it (the platform's `spaces` package against a stand-in device API,
the worker on the CPU: tests/zerogpu_server.py, tests/zerogpu_cpu.py): each endpoint's time through the platform's
path (a GPU request, the worker, the answer pickled back) beside the same handler called in-process. The basis of the
GPU-time bounds in cifar/page/endpoints.py, measured on this CPU: a GPU only shortens the work."""

import statistics
import sys
import tempfile
import time
from pathlib import Path

from gradio_client import Client, handle_file

from cifar.deploy.space import stage_space
from cifar.runs.folder import load_run, model_names
from cifar.page.served import ServedModels
from cifar.page.tabs.compare import CompareTab
from cifar.page.tabs.corruptions import CorruptionsTab
from cifar.page.tabs.predict import PredictTab
from tests.zerogpu_server import StandInDeviceApi, serving

from .common import MODEL, ROOT, example_paths, served

ROBUST = str(Path(MODEL).parent / "resnet18-cifar10-robust")


def median_s(fn, pictures: list) -> float:
    """The median time of fn(picture) over the pictures: each a new one, so nothing is remembered from before."""
    times = []
    for picture in pictures:
        started = time.perf_counter()
        fn(picture)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_zerogpu(model_path=MODEL, repeats=3):
    """Each endpoint through ZeroGPU's path (median over `repeats` examples, the worker already started) against its
    handler in-process, and the first request's time (a fresh worker: fork, weights moved, the first call)."""
    models = [model_path, ROBUST]
    cat, pictures = example_paths()[3], example_paths()[:repeats]
    with tempfile.TemporaryDirectory() as folder:
        stage_space(Path(folder) / "space", models)
        api = StandInDeviceApi()
        with serving(api) as api_url:
            env = {"SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": api_url, "SYSTEM": "spaces",
                   "HOME": folder, "PYTHONPATH": None, "GRADIO_ANALYTICS_ENABLED": "False"}
            with served([sys.executable, str(Path(ROOT) / "tests" / "zerogpu_cpu.py")], env=env,
                        cwd=Path(folder) / "space") as (url, start):
                client = Client(url, verbose=False)
                started = time.perf_counter()
                client.predict(handle_file(cat), 3, True, api_name="/predict")
                first = time.perf_counter() - started
                served_models = ServedModels.load(dict(zip(model_names(models), map(load_run, models))))
                predict, compare = PredictTab(served_models), CompareTab(served_models)
                corruptions = CorruptionsTab(served_models)
                rows = [
                    ("/predict", lambda p: client.predict(handle_file(p), 3, True, api_name="/predict"),
                     lambda p: predict.predict(p, 3)),
                    ("/explain Grad-CAM", lambda p: client.predict(handle_file(p), "layer4", "predicted class",
                                                                   "Grad-CAM", 0.5, api_name="/explain"),
                     lambda p: predict.explain(p, "layer4", "predicted class", "Grad-CAM")),
                    ("/explain Score-CAM", lambda p: client.predict(handle_file(p), "layer4", "predicted class",
                                                                    "Score-CAM", 0.5, api_name="/explain"),
                     lambda p: predict.explain(p, "layer4", "predicted class", "Score-CAM")),
                    ("/compare_methods", lambda p: client.predict(handle_file(p), "layer4", "predicted class", 0.5,
                                                                  api_name="/compare_methods"),
                     lambda p: compare.compare_methods(p, "layer4")),
                    ("/corruption Score-CAM, 2 models", lambda p: client.predict(
                        handle_file(p), "fog", "layer4", "Score-CAM", 0.5, api_name="/corruption"),
                     lambda p: corruptions.corruption(p, "fog", "layer4", "Score-CAM"))]
                print(f"ZeroGPU rehearsal on the CPU: the app answered {start:.1f} s after its start; its first request "
                      f"(a fresh worker: fork, weights moved, the call) took {first:.1f} s")
                heading = f"endpoint (median of {repeats} pictures, s)"
                print(f"{heading:<40} {'via ZeroGPU':>12} {'in-process':>11} "
                      f"{'ratio':>7}")
                for name, remote, local in rows:
                    via, alone = median_s(remote, pictures), median_s(local, pictures)
                    print(f"{name:<40} {via:12.2f} {alone:11.2f} {via / alone:6.2f}x")
                print(f"GPU requests made: {len(api.schedules())}, workers started: {api.count('/allow')}")
