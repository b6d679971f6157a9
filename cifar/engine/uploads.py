"""A user's pictures in bulk: files and ZIPs of them read into model inputs, each file that cannot be used refused
with its name and the reason while the others go on. No UI in it (the page's tab is cifar/page/tabs/bulk.py).

A ZIP is read without trusting it: its table of contents is checked before anything is decompressed (how many
members, how large each one and all of them say they expand to), a member whose name would leave the folder (`../`,
an absolute path) is refused, and each member is read with a bound, so one that lies about its size (a ZIP bomb) is
cut off at the bound. Members are written under names of our own, in a folder that lives for one request.
"""

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from cifar.engine.pictures import MAX_BYTES, BadImage, load_image, prepare

MOST_PICTURES = 300  # per request, files and ZIP members together: a few hundred, as the page promises
MOST_BYTES = MAX_BYTES  # a ZIP member expands to at most what one picture may be
MOST_ZIP_BYTES = 500_000_000  # all of one ZIP's members together, expanded
# What a ZIP made on a Mac or by a file manager holds besides the pictures: skipped without a word.
SKIPPED_FOLDER = "__MACOSX/"
SKIPPED_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass(frozen=True)
class Picture:
    """One usable upload: its name as the user knows it (a ZIP member's path inside the ZIP), the model's 32x32 input
    and the enlarged view of the same crop."""

    name: str
    small: np.ndarray
    display: np.ndarray


@dataclass(frozen=True)
class Refusal:
    name: str
    reason: str


def read_uploads(paths: list) -> tuple[list[Picture], list[Refusal]]:
    """The pictures among `paths` (uploaded files: pictures or ZIPs of pictures), in order, and a refusal for each file
    or ZIP member that is not one, or that comes after the first MOST_PICTURES."""
    pictures, refusals = [], []
    with tempfile.TemporaryDirectory(prefix="cifar-bulk-") as folder:  # gone when the request is answered
        for path in paths:
            name = Path(path).name
            if zipfile.is_zipfile(path):
                for member, picture in zip_members(path, Path(folder), refusals):
                    add(pictures, refusals, f"{name}/{member}", picture)
            else:
                add(pictures, refusals, name, path)
    return pictures, refusals


def add(pictures: list, refusals: list, name: str, path) -> None:
    if len(pictures) == MOST_PICTURES:
        refusals.append(Refusal(name, f"over the {MOST_PICTURES} pictures one request answers"))
        return
    try:
        small, display = prepare(load_image(path))
    except BadImage as error:
        refusals.append(Refusal(name, str(error)))
        return
    pictures.append(Picture(name, small, display))


def zip_members(path, folder: Path, refusals: list):
    """(name, file) for each usable member of the ZIP at `path`, written into `folder` under a name of our own; a
    refusal for each unsafe or oversized member, or one for the whole ZIP when its table of contents is."""
    zip_name = Path(path).name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        refusals.append(Refusal(zip_name, f"not a ZIP we can read ({error})"))
        return
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir() and not skipped(info.filename)]
        if len(members) > MOST_PICTURES:
            refusals.append(Refusal(zip_name, f"holds {len(members)} files; at most {MOST_PICTURES} are answered at "
                                              "once"))
            return
        total = sum(info.file_size for info in members)
        if total > MOST_ZIP_BYTES:
            refusals.append(Refusal(zip_name, f"expands to {total / 1e6:.0f} MB; at most "
                                              f"{MOST_ZIP_BYTES / 1e6:.0f} MB are read"))
            return
        for number, info in enumerate(members):
            reason = unsafe(info)
            if reason is None:
                written = folder / f"{number:04d}{Path(info.filename).suffix.lower()[:8]}"
                reason = extract(archive, info, written)
            if reason is None:
                yield info.filename, written
            else:
                refusals.append(Refusal(f"{zip_name}/{info.filename}", reason))


def skipped(name: str) -> bool:
    """A member that is no picture of the user's: a Mac's resource forks (__MACOSX/, ._NAME), a folder's index."""
    base = PurePosixPath(name).name
    return name.startswith(SKIPPED_FOLDER) or base in SKIPPED_NAMES or base.startswith("._")


def unsafe(info: zipfile.ZipInfo) -> str | None:
    """Why a member cannot be taken from its table-of-contents entry alone, or None."""
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive or ".." in parts:
        return "its path leaves the ZIP's folder (an absolute path or ../): refused"
    if info.flag_bits & 0x1:
        return "encrypted: unzip it first"
    if name.lower().endswith(".zip"):
        return "a ZIP inside a ZIP: upload it on its own"
    if info.file_size > MOST_BYTES:
        return (f"expands to {info.file_size / 1e6:.0f} MB ({info.compress_size / 1e3:.0f} kB compressed); a picture "
                f"may be at most {MOST_BYTES // 1_000_000} MB")
    return None


def extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, written: Path) -> str | None:
    """Write the member to `written`, reading at most MOST_BYTES of it; why not, or None."""
    try:
        with archive.open(info) as member:
            data = member.read(MOST_BYTES + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as error:
        return f"cannot be read from the ZIP ({error})"
    if len(data) > MOST_BYTES:  # its entry said less: a bomb that lies about its size
        return f"expands past {MOST_BYTES // 1_000_000} MB though the ZIP says {info.file_size} bytes"
    written.write_bytes(data)  # in the request's own folder (mode 0700), under a name of ours
    return None
