"""Files written whole or not at all: a crash or Ctrl-C mid-write leaves the old file, never half of a new one.
Training, the run folder, the faithfulness table and the app's served pictures all write through here."""

import json
import os
import threading
from pathlib import Path

STATE_NAME = "training_state.pt"  # a run's resume state (optimizer, schedule, history): never shipped or pushed
TEMPORARY_SUFFIX = ".tmp"  # what a write in progress is called; never pushed either


def atomic_write(path: Path, write) -> None:
    """write(temporary path), then rename it to `path` in one step. The temporary name is the writer's own, so two
    threads or processes writing the same file at once (two users getting the same picture) never share one."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}{TEMPORARY_SUFFIX}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_json(path: Path, data) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
