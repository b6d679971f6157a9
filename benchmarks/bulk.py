"""Pictures in bulk: the Your pictures tab's /bulk on a ZIP of 200 members (197 pictures, a broken one, a ZIP bomb and
a ../ name: tests/test_bulk.py's), per picture, against the single-picture path (/predict, /explain and /faithfulness
for one picture, what a user uploading them one by one gets) measured in the same run."""

import tempfile
import time
from pathlib import Path

import PIL.Image

from cifar.page.served import ServedModels
from cifar.page.tabs.bulk import BulkTab
from cifar.page.tabs.predict import PredictTab
from cifar.runs.folder import load_run

from .common import images, report

SINGLE = 30  # pictures sent one by one: enough for a steady per-picture time


def bench_bulk(model_path):
    from tests.test_bulk import zip_of_200

    models = ServedModels.load({"model": load_run(model_path)})
    bulk, single = BulkTab(models), PredictTab(models)
    with tempfile.TemporaryDirectory() as folder:
        upload = zip_of_200(Path(folder) / "photos.zip")
        started = time.perf_counter()
        rows, _, refused, _ = bulk.bulk([str(upload)])
        in_bulk = (time.perf_counter() - started) / len(rows)
        assert (len(rows), len(refused)) == (197, 3)
        paths = []
        for number, picture in enumerate(images(SINGLE + 1)):  # distinct pictures: nothing remembered helps
            paths.append(str(Path(folder) / f"{number}.png"))
            PIL.Image.fromarray(picture).save(paths[-1])
        single.explain(paths.pop())  # warm-up
        started = time.perf_counter()
        for path in paths:
            single.predict(path)
            single.explain(path)
            single.faithfulness(path)
        one_by_one = (time.perf_counter() - started) / len(paths)
    report("a picture in a ZIP of 200 vs one by one", 1000 * in_bulk, 1000 * one_by_one, "ms/pic",
           higher_is_better=False)
