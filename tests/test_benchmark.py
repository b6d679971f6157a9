"""The benchmark's own logic, on tiny sizes: its numbers are only worth something if it measures the
right thing (the speed itself is measured by `python -m cifar.benchmark`, never asserted here)."""

import json

from benchmarks.training import bench_gpu, bench_history


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
    bench_history(tmp_path, accuracy=0.95)
    assert "not reached (best 90.00%)" in capsys.readouterr().out
