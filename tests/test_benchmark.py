"""The benchmark's own logic, on tiny sizes: its numbers are only worth something if it measures the
right thing (the speed itself is measured by `python -m cifar.benchmark`, never asserted here)."""

import json
import os
from pathlib import Path

from benchmarks.training import bench_gpu, bench_history
from tests.conftest import ROOT


def test_gpu_part_runs_every_measurement_on_any_device(capsys):
    # The GPU code path, on the CPU: the loader, our step, the two together, the original's step.
    bench_gpu(device="cpu", seconds=0.1, epoch_images=96, batch_size=32, compile=False)
    out = capsys.readouterr().out
    for line in ("input pipeline alone (0 workers)", "our step, batch on the device (eager)",
                 "ours end to end: loader + step, one epoch", "loader headroom", "our step vs the original's"):
        assert line in out
    assert out.count("x\n") == 2  # two ratios printed


def test_history_part_finds_the_first_epoch_at_the_accuracy(tmp_path, capsys):
    epochs = [{"epoch": i + 1, "seconds": 10.0 * (i + 1), "test_accuracy": acc}
              for i, acc in enumerate([0.80, 0.871, 0.86, 0.90])]
    (tmp_path / "history.json").write_text(json.dumps({"device": "CPU", "epochs": epochs}))
    bench_history(tmp_path)
    out = capsys.readouterr().out
    assert "4 epochs in 100 s" in out
    assert "time to 87% test accuracy" in out and "epoch 2, 30 s" in out
    assert "time to 94% test accuracy" in out and "not reached (best 90.00%)" in out
    bench_history(tmp_path, accuracies=(0.80, 0.90))
    out = capsys.readouterr().out
    assert "time to 80% test accuracy" in out and "epoch 1, 10 s" in out and "epoch 4, 100 s" in out


def test_the_offline_kit_carries_the_data_in_parts_and_refuses_a_damaged_one(tmp_path):
    import numpy as np
    import pytest

    from benchmarks.offline_kit import pack_data, project_name, unpack_data
    from tests.conftest import npz_folder, synthetic_cifar

    data = synthetic_cifar(n_train=256, n_test=64)
    parts = pack_data(npz_folder(tmp_path / "here", data), tmp_path / "kit", part_mib=0.1)
    assert len(parts) > 1 and max(p.stat().st_size for p in parts) <= 0.1 * 2 ** 20
    unpack_data(tmp_path / "kit", tmp_path / "there")
    for split, (x, y) in data.items():
        with np.load(tmp_path / "there" / f"{split}.npz") as arrays:
            np.testing.assert_array_equal(arrays["x"], x)
            np.testing.assert_array_equal(arrays["y"], y)
    parts[-1].unlink()
    with pytest.raises(SystemExit, match=f"lacks {parts[-1].name}"):
        unpack_data(tmp_path / "kit", tmp_path / "there")
    assert project_name(Path("opencv_python_headless-5.1.0.95-cp37-abi3-manylinux_2_28_x86_64.whl")) == "opencv-python-headless"


def test_the_gpu_proof_stops_at_once_without_a_gpu(tmp_path):
    import subprocess

    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the proof would run")
    result = subprocess.run(["bash", "benchmarks/gpu_proof.sh", str(tmp_path), str(tmp_path / "out")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, env={**os.environ, "GPU_PROOF_ON_CPU": ""})
    assert result.returncode == 2 and "no CUDA GPU here" in result.stderr
    assert not (tmp_path / "out").exists()
