"""Break the product on purpose, one behaviour at a time, and check that the suite notices.

    python -m tests.mutations                  # every mutation, each against the tests named with it
    python -m tests.mutations lr-ignored cmyk  # some of them
    python -m tests.mutations --all-tests lr-ignored   # against the whole suite instead

Not part of the normal run (pytest collects only test_*.py). Each mutation is a text substitution in one
file of a copy of the working tree (the tree itself is never touched); each text to break must occur
exactly once, so a mutation cannot silently go stale when the code changes. A mutation is caught when a
test fails on the mutated copy.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent

# name -> (file, original text, broken text, the tests expected to catch it)
MUTATIONS = {
    # #35: MCP tools, the test set as a map, pictures in bulk.
    "mcp-answers-a-tuple-as-one-text": ("cifar/page/layout.py", "        serve_every_output()\n", "",
                                        ["tests/test_mcp.py"]),
    "mcp-parameters-undescribed": ("cifar/page/endpoints.py", "        run.__doc__ = found.description\n", "",
                                   ["tests/test_mcp.py"]),
    "zip-member-paths-trusted": ("cifar/engine/uploads.py",
                                 "if name.startswith((\"/\", \"\\\\\")) or PureWindowsPath(name).drive or \"..\" in parts:",
                                 "if False:", ["tests/test_bulk.py"]),
    "zip-sizes-trusted": ("cifar/engine/uploads.py", "    if info.file_size > MOST_BYTES:\n", "    if False:\n",
                          ["tests/test_bulk.py"]),
    "bulk-sorted-the-wrong-way": ("cifar/page/tabs/bulk.py", "np.argsort(-probabilities.max(1) if sort == SORTS[1]",
                                  "np.argsort(probabilities.max(1) if sort == SORTS[1]", ["tests/test_bulk.py"]),
    "map-mistakes-not-first": ("cifar/page/tabs/test_map.py",
                               "return np.concatenate([indices[wrong], indices[~wrong]])[:int(count)]",
                               "return indices[:int(count)]",
                               ["tests/test_test_map.py"]),
    "map-drawn-upside-down": ("cifar/engine/test_map.py", "row = (y_max - self.points[:, 1])",
                              "row = (self.points[:, 1] - y_min)", ["tests/test_test_map.py"]),
    # #33: the page layer on ZeroGPU, and the layout.
    "stored-gallery-asks-for-a-gpu": ("cifar/page/tabs/misclassified.py",
                                      'needed = shows_heatmaps(arguments) and not tab.models[arguments["model"]].stores_gallery',
                                      "needed = True", ["tests/test_zerogpu.py"]),
    "model-run-outside-the-gpu-worker": ("cifar/page/endpoints.py",
                                         "self.on_gpu = spaces.GPU(self._run, duration=self._seconds)",
                                         "self.on_gpu = None", ["tests/test_zerogpu.py"]),
    "page-imports-the-training-pipeline": ("cifar/page/tabs/predict.py", "import copy\n",
                                           "import copy\nimport cifar.training.data  # noqa\n",
                                           ["tests/test_layout.py"]),
    # #24: the robust recipe and the page of several models.
    "augmix-without-the-skip-connection": ("cifar/training/augmix.py",
                                           'mixed = (1 - plan["skip"]) * image.astype(np.float32) + plan["skip"] * mix',
                                           "mixed = mix", ["tests/test_augmix.py"]),
    "fine-tune-starts-from-scratch": ("cifar/training/loop.py", "        model.load_state_dict(start.state_dict())\n",
                                      "", ["tests/test_training.py"]),
    "page-answers-with-the-default-model": ("cifar/page/served.py", "return self.by_name[name]",
                                            "return self.first", ["tests/test_app.py"]),
    "explorer-shows-the-first-model-alone": ("cifar/page/tabs/corruptions.py",
                                             "for name in models.names}", "for name in models.names[:1]}",
                                             ["tests/test_corruptions.py"]),
    # #23: the page's confidence, its calibration, the baselines and the sanity check.
    "temperature-not-applied": ("cifar/engine/predict.py", "answer = (logits / temperature).softmax(1).cpu().numpy()",
                                "answer = logits.softmax(1).cpu().numpy()", ["tests/test_app.py"]),
    "temperature-fitted-on-the-reported-half": (
        "cifar/engine/calibration.py", "return calibrate(test_logits[fit], test_labels[fit], test_logits[report]",
        "return calibrate(test_logits[report], test_labels[report], test_logits[report]", ["tests/test_calibration.py"]),
    "randomization-skips-the-first-stage": ("cifar/measure/sanity.py", "    for stage in stages:\n", "    for stage in stages[1:]:\n",
                                            ["tests/test_sanity.py"]),
    "tick-for-beating-random-alone": ("cifar/measure/faithfulness_table.py", '" ✓" if len(beaten) == len(BASELINES)',
                                      '" ✓" if RANDOM in beaten', ["tests/test_faithfulness.py"]),
    # #23, part 4: the whole test set, browsed and exported.
    "selection-ignores-the-confidence-range": (
        "cifar/engine/test_set.py", "keep = (confidences >= confidence[0]) & (confidences <= confidence[1])",
        "keep = np.ones(len(confidences), dtype=bool)", ["tests/test_test_set.py"]),
    "browsed-confidence-raw": ("cifar/engine/test_set.py", "scaled_probabilities(self.logits, self.temperature or 1.0)",
                               "scaled_probabilities(self.logits, 1.0)", ["tests/test_test_set.py"]),
    "centre-square-shifted": ("cifar/engine/test_set.py", "CENTRE = (slice(8, 24), slice(8, 24))",
                              "CENTRE = (slice(7, 23), slice(8, 24))", ["tests/test_test_set.py"]),
    "exported-maps-for-the-predicted-class": (
        "cifar/engine/test_set.py", "self.explainer.heatmaps(self.images[indices], (layer,), method, self.classes_of(indices, side))",
        "self.explainer.heatmaps(self.images[indices], (layer,), method, self.classes_of(indices))",
        ["tests/test_test_set.py::test_export_is_the_selection_browse_shows_with_its_maps_and_scores"]),
    # #24: the corruptions and their explorer.
    "corruption-severity-ignored": ("cifar/engine/corruptions.py", "CORRUPTIONS[name](source, severity, rng)",
                                    "CORRUPTIONS[name](source, 1, rng)", ["tests/test_corruptions.py"]),
    "explorer-compares-with-the-wrong-picture": (
        "cifar/page/tabs/corruptions.py", '"similarity": [spearman(maps[0], heatmap) for heatmap in maps]',
        '"similarity": [spearman(maps[-1], heatmap) for heatmap in maps]',
        ["tests/test_corruptions.py::"
         "test_the_explorer_shows_every_severity_each_models_prediction_and_how_far_its_heatmap_moved"]),
    "lr-ignored": ("cifar/training/loop.py", "lr=config.lr, momentum", "lr=config.lr * 1e-12, momentum",
                   ["tests/test_training.py"]),
    "labels-shifted": ("cifar/training/data.py", 'return self.transform(image=image)["image"], int(self.y[index])',
                       'return self.transform(image=image)["image"], '
                       'int(self.y[np.random.default_rng(index).integers(len(self.y))])',
                       ["tests/test_training.py"]),
    "schedule-not-stepped": ("cifar/training/loop.py", "            schedule.step()\n", "", ["tests/test_training.py"]),
    "gradients-never-synced": ("cifar/training/loop.py", "if ddp is not None and i < chunks - 1 else", "if ddp is not None else",
                               ["tests/test_distributed.py"]),
    "ddp-not-used": ("cifar/training/loop.py", "if config.compile else (ddp or model)", "if config.compile else model",
                     ["tests/test_distributed.py"]),
    # --resume reads the state and checks its config, then trains from epoch 0 again (and, on a CPU,
    # deterministically ends with the same history as the uninterrupted run).
    "resume-restarts": ("cifar/training/loop.py", '        model.load_state_dict(state["model"])\n'
                        '        optimizer.load_state_dict(state["optimizer"])\n'
                        '        schedule.load_state_dict(state["schedule"])\n'
                        '        history = state["history"]\n', "",
                        ["tests/test_training.py", "tests/test_faults.py"]),
    "momentum-not-restored": ("cifar/training/loop.py", '        optimizer.load_state_dict(state["optimizer"])\n', "",
                              ["tests/test_training.py"]),
    "augmentations-not-seeded": ("cifar/training/data.py", "            self.transform.set_random_seed(", "            (",
                                 ["tests/test_data.py"]),
    "sixteen-bit-clipped": ("cifar/engine/pictures.py", 'if image.mode in ("I;16", "I;16B", "I;16L", "I"):', "if False:",
                            ["tests/test_bad_input.py"]),
    "cmyk-channels-dropped": ("cifar/engine/pictures.py", '    return image.convert("RGB")',
                              '    return PIL.Image.merge("RGB", image.split()[:3]) if image.mode == "CMYK" '
                              'else image.convert("RGB")', ["tests/test_bad_input.py"]),
    "transparent-becomes-black": ("cifar/engine/pictures.py", "(255, 255, 255, 255)", "(0, 0, 0, 255)",
                                  ["tests/test_bad_input.py"]),
    "gradcam-plus-plus-blank": ("cifar/engine/cam/gradient.py", "return (F.relu(gradients) * alpha).sum((2, 3))",
                                "return 0 * (F.relu(gradients) * alpha).sum((2, 3))", ["tests/test_gradcam.py"]),
    "gradcam-ignores-target": ("cifar/engine/cam/base.py",
                               "targets = one_hot(logits.argmax(1) if target_classes is None else target_classes)",
                               "targets = one_hot(logits.argmax(1))", ["tests/test_gradcam.py"]),
    "contrast-ignored": ("cifar/engine/cam/base.py", "return targets if contrast_classes is None else targets - one_hot(contrast_classes)",
                         "return targets", ["tests/test_gradcam.py"]),
    "score-cam-silent-channels-score-zero": ("cifar/engine/cam/activation.py",
                                             "scores = (targets @ black_logits)[:, None].expand(silent.shape).clone()",
                                             "scores = torch.zeros(silent.shape)",
                                             ["tests/test_gradcam.py::test_score_cam_weighs_channels_that_are_constant"
                                              "_but_not_zero_as_the_reference_does"]),
    "shapley-drops-the-second-order-term": ("cifar/engine/cam/gradient.py",
                                            "shapley.append((first if hessian_vector is None else first - 0.5 * hessian_vector).detach())",
                                            "shapley.append(first.detach())",
                                            ["tests/test_gradcam.py::test_shapley_cams_second_order_term_is_what_the_reference_adds"]),
    "finer-cam-compares-with-itself": ("cifar/engine/cam/gradient.py", "[:, 1:1 + self.compared]", "[:, 0:self.compared]",
                                       ["tests/test_gradcam.py::test_finer_cam_matches_pytorch_grad_cam_with_its_comparison_classes"]),
    "fullgrad-forgets-the-input": ("cifar/engine/cam/fused.py", "total = channels_scaled((gradients[\"\"] * images).abs(), images).sum(1)",
                                   "total = 0 * channels_scaled((gradients[\"\"] * images).abs(), images).sum(1)",
                                   ["tests/test_gradcam.py::test_full_grad_matches_pytorch_grad_cam_and_is_the_same_at_every_layer"]),
    "cover-removes-the-least-relevant": ("cifar/engine/faithfulness.py",
                                         "return ~kept_pixels(cam, 100 - percent, most_relevant_first=True)",
                                         "return kept_pixels(cam, 100 - percent, most_relevant_first=True)",
                                         ["tests/test_faithfulness.py::test_the_page_covers_a_picture_as_road_removes_pixels"]),
    "deletion-keeps-the-relevant-pixels": ("cifar/engine/metrics.py", "deleted = torch.where(relevant[:, 1:], 0.0, pixels)",
                                           "deleted = torch.where(relevant[:, 1:], pixels, 0.0)",
                                           ["tests/test_metrics.py::test_deletion_and_insertion_equal_torch_cams"]),
    "arcc-ignores-road": ("cifar/engine/metrics.py", "road_part = np.clip(road_score * 2, 0, 1)",
                          "road_part = np.ones_like(road_score)", ["tests/test_metrics.py::test_arcc_equals_pytorch_grad_cams"]),
    "blurred-control-not-blurred": ("cifar/engine/cam/baselines.py", "            return flat.view(maps.shape)",
                                    "            return maps", ["tests/test_gradcam.py::test_a_methods_blurred_control_is_its_own_map_gaussian_blurred"]),
    "sess-ignores-the-windows-scores": ("cifar/engine/cam/fused.py",
                                        "weights = scores / scores.max() if scores.max() > 0 else torch.ones_like(scores)",
                                        "weights = torch.ones_like(scores)",
                                        ["tests/test_gradcam.py::test_sess_matches_pytorch_grad_cam_fusing_grad_cam_over_its_windows"]),
    "road-sides-swapped": ("cifar/engine/faithfulness.py",
                           "Road(most_relevant_first=drops[:, 1].numpy(), least_relevant_first=drops[:, 0].numpy())",
                           "Road(most_relevant_first=drops[:, 0].numpy(), least_relevant_first=drops[:, 1].numpy())",
                           ["tests/test_faithfulness.py"]),
    "road-noise-shared-across-the-batch": ("cifar/engine/faithfulness.py",
                                           "generators = [torch.Generator().manual_seed(seed) for _ in images]",
                                           "generators = [torch.Generator().manual_seed(seed)] * len(images)",
                                           ["tests/test_faithfulness.py"]),
    "table-ignores-the-baseline": ("cifar/measure/faithfulness_table.py", "    difference = scores - baseline\n",
                                   "    difference = scores\n", ["tests/test_faithfulness.py"]),
    "stored-scores-of-other-mistakes": ("cifar/engine/explainer.py", "np.asarray(stored[side])[chosen]",
                                        "np.asarray(stored[side])[:len(chosen)]", ["tests/test_faithfulness.py"]),
    "hooks-left-behind": ("cifar/engine/cam/base.py", "                handle.remove()", "                pass",
                          ["tests/test_gradcam.py"]),
    "layercam-keeps-negative-gradients": ("cifar/engine/cam/gradient.py", "return (F.relu(gradients) * activations).sum(1)",
                                          "return (gradients * activations).sum(1)", ["tests/test_gradcam.py"]),
    "tta-mirrors-vertically": ("cifar/engine/predict.py", "views.append(images.flip(3))", "views.append(images.flip(2))",
                               ["tests/test_evaluate.py"]),
    "resume-state-pushed": ("cifar/deploy/hub.py", "NOT_PUSHED = [STATE_NAME, ", "NOT_PUSHED = [", ["tests/test_hub.py"]),
    "half-written-files-pushed": ("cifar/deploy/hub.py", '"*.tmp"]', "]", ["tests/test_hub.py"]),
    "space-ships-the-whole-run-folder": ("cifar/deploy/space.py",
                                         '{Path(model) / file: f"{MODELS_DIR}/{name}/{file}" for file in RUN_FILES + '
                                         'OPTIONAL_RUN_FILES\n                       if (Path(model) / file).is_file()}',
                                         '{path: f"{MODELS_DIR}/{name}/{path.name}" for path in Path(model).iterdir()}',
                                         ["tests/test_space.py"]),
    "zero-gpu-never-requested": ("cifar/device.py", "    return spaces.GPU(handler, duration=seconds)", "    return handler",
                                 ["tests/test_space.py"]),
    "zero-gpu-not-asked-at-creation": ("cifar/deploy/space.py", "space_hardware=hardware or ZERO_GPU_HARDWARE)",
                                       "space_hardware=hardware)",
                                       ["tests/test_space.py::test_a_free_account_deploys_on_zero_gpu"]),
    "hubs-reason-dropped": ("cifar/deploy/space.py", "reason = (error.server_message or str(error).splitlines()[0]).strip()",
                            "reason = str(error).splitlines()[0]",
                            ["tests/test_space.py::test_the_hubs_reason_reaches_the_user"]),
    "maps-not-remembered": ("cifar/engine/explainer.py", "known = {layer: self._recent.get((*key, layer)) for layer in layers}",
                            "known = {layer: None for layer in layers}",
                            ["tests/test_app.py::test_moving_between_stages_or_scoring_reuses_the_heatmaps_already_computed"]),
    "gallery-heatmaps-of-the-true-class-for-both": ("cifar/training/finish.py",
                                                    'explainer.mistake_heatmaps(misclassified["images"], misclassified[side])',
                                                    'explainer.mistake_heatmaps(misclassified["images"], misclassified["true"])',
                                                    ["tests/test_app.py::test_the_gallery_draws_the_heatmaps_stored_with_the"
                                                     "_run_which_are_those_it_would_compute"]),
    "stored-heatmaps-of-other-mistakes": ("cifar/engine/explainer.py", "return misclassified[heatmap_key(side)][chosen]",
                                          "return misclassified[heatmap_key(side)][:len(chosen)]",
                                          ["tests/test_app.py::test_the_gallery_draws_the_heatmaps_stored_with_the"
                                           "_run_which_are_those_it_would_compute"]),
    "mistakes-least-confident-first": ("cifar/page/tabs/misclassified.py", 'np.argsort(-served.mistake_confidence[chosen]',
                                       'np.argsort(served.mistake_confidence[chosen]', ["tests/test_app.py"]),
    "mistakes-shown-raw": ("cifar/page/served.py", "        if self.temperature and run.predictions is not None:\n",
                           "        if False:\n", ["tests/test_app.py::test_misclassified_gallery_order_and_filters"]),
    "predicted-class-filter-ignored": ("cifar/page/tabs/misclassified.py",
                                       '(("true", true_class), ("predicted", predicted_class))',
                                       '(("true", true_class),)', ["tests/test_app.py"]),
    # What the page returns, checked against an independent computation (#22):
    "top-k-skips-the-most-likely": ("cifar/page/tabs/predict.py", "best = np.argsort(-probabilities)[:int(top_k)]",
                                    "best = np.argsort(-probabilities)[1:int(top_k) + 1]",
                                    ["tests/test_app.py::test_predict_lists_the_most_likely_classes_by_an_independent_forward_pass"]),
    "model-shown-the-top-left": ("cifar/engine/pictures.py", "left, top = (image.width - side) // 2, (image.height - side) // 2",
                                 "left, top = 0, 0", ["tests/test_app.py::test_the_model_is_shown_the_centre_of_a_wide_picture"]),
    "methods-pictured-in-their-own-order": ("cifar/page/tabs/compare.py",
                                            "gallery = [(image_file(overlay(display, maps[name].maps[layer], opacity))",
                                            "gallery = [(image_file(overlay(display, maps[list(METHODS)[order.index(name)]]"
                                            ".maps[layer], opacity))",
                                            ["tests/test_bundled_model.py::test_every_method_side_by_side_most_faithful_first_each_picture_its_own"]),
    "score-cam-waits-for-the-strip": ("cifar/page/tabs/predict.py", "    if method in COSTLY_METHODS:\n        return (layer,)\n", "",
                                      ["tests/test_app.py::test_score_cams_heatmap_does_not_wait_for_its_strip"]),
}


def working_tree_copy(destination: Path) -> Path:
    """The tracked and untracked (not ignored) files of the working tree, as they are now."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def mutate(tree: Path, file: str, original: str, broken: str) -> None:
    path = tree / file
    text = path.read_text()
    if text.count(original) != 1:
        raise SystemExit(f"{file}: the text to break occurs {text.count(original)} times, not once: {original!r}")
    path.write_text(text.replace(original, broken))


def run_tests(tree: Path, tests: list) -> tuple[bool, str]:
    """(caught, the first failing test or the pytest summary)."""
    env = {**os.environ, "CIFAR10_DIR": os.environ.get("CIFAR10_DIR", str(ROOT.parent / "shared" / "cifar10"))}
    result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                            cwd=tree, env=env, capture_output=True, text=True)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, re.M)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-300:]
    return result.returncode != 0, (failed[0] if failed else summary)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"mutations to try (default: all): {', '.join(MUTATIONS)}")
    parser.add_argument("--all-tests", action="store_true", help="run the whole suite, not the tests named with each")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(MUTATIONS)
    if unknown:
        parser.error(f"unknown mutation {', '.join(sorted(unknown))}")
    names = args.names or list(MUTATIONS)
    # A test that fails on the unbroken tree would "catch" every mutation: they must all pass first.
    baseline = [] if args.all_tests else sorted({test for name in names for test in MUTATIONS[name][3]})
    with tempfile.TemporaryDirectory(prefix="mutant-none-") as folder:
        failing, detail = run_tests(working_tree_copy(Path(folder)), baseline)
    if failing:
        raise SystemExit(f"the tests fail on the unbroken tree ({detail}): fix them first")
    print(f"unbroken tree: {detail}", flush=True)
    missed = []
    for name in names:
        file, original, broken, tests = MUTATIONS[name]
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"mutant-{name}-") as folder:
            tree = working_tree_copy(Path(folder))
            mutate(tree, file, original, broken)
            caught, detail = run_tests(tree, [] if args.all_tests else tests)
        print(f"{'caught' if caught else 'MISSED'}  {name:32s} {time.monotonic() - started:5.0f} s  {detail}", flush=True)
        if not caught:
            missed.append(name)
    print(f"{len(names) - len(missed)} caught, {len(missed)} missed" + (f": {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
