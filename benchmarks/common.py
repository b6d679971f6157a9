"""What every benchmark shares: timing with a warm-up, ratios against a baseline measured in the same run, test
images, and a server started for the length of a measurement (the tests use it too)."""

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import time
import urllib.request

import numpy as np


ROOT = os.path.join(os.path.dirname(__file__), "..")
MODEL = os.path.join(ROOT, "checkpoints", "resnet18-cifar10")
CHROMIUM = "/usr/bin/chromium"


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(command: list, env: dict | None = None, cwd=ROOT, ready="/", limit: float = 300):
    """`command` (a Gradio server: app.py or another) started in `cwd` on a free loopback port, given to it as a Space
    gives it, in GRADIO_SERVER_PORT; yields its URL once `ready` answers, and the seconds from start to that answer.
    `env` adds to (or, with None values, removes from) this process's environment. The benchmarks and the tests
    start every server through here."""
    port = free_port()
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_PORT": str(port), **(env or {})}
    started = time.perf_counter()
    # In a session of its own, stopped as a group: a server's children (ZeroGPU's forked workers) go with it.
    server = subprocess.Popen(command, cwd=cwd, env={k: v for k, v in environment.items() if v is not None},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + limit  # a start-up limit, not a measurement
        while True:
            try:
                urllib.request.urlopen(url + ready.lstrip("/"), timeout=5)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"{' '.join(command[:2])} exited: {server.stdout.read()}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(command[:2])} did not answer within {limit:.0f} s") from None
                time.sleep(0.1)
        yield url, time.perf_counter() - started
    finally:
        stop_group(server)


def stop_group(server: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM to a server started in its own session, and to every process of that session; then SIGKILL to what is
    left of it (a server's forked workers outlive a SIGTERM sent to the server alone)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:  # the whole session has gone
            pass
        try:
            server.wait(wait)
        except subprocess.TimeoutExpired:
            pass
    server.stdout.close()


def example_paths() -> list:
    return sorted(os.path.join(ROOT, "examples", f) for f in os.listdir(os.path.join(ROOT, "examples")))
