"""A catalogue kept as a folder per individual, read as the playground layout the stages read.

Photo-ID catalogues are kept as ``catalogue/<individual id>/<photo>``, with a survey's new photos
in one folder (``queries/<photo>``): it is how field teams, WildlifeDatasets and torchvision's
``ImageFolder`` store them. `link_as_playground` describes such a pair of folders as Kaggle's
layout (``train.csv``, ``train/``, ``test/``) in the results folder, of symbolic links to the
photos where they are: nothing is copied, and nothing is written into the source folders. The
ingest then checks every photo as it checks a playground dataset, and names the linked file.

A catalogue photo is named ``<individual id>__<photo>`` in the playground layout, since two
individuals' folders often hold photos of the same name (``IMG_0001.jpg``); a photo whose name
already starts so keeps it, which is what lets the review's per-individual export
(`export_catalogue`) be read back as next season's catalogue under the same names.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from whaleid.data.images import IMAGE_SUFFIXES
from whaleid.data.ingest import REJECTED_COLUMNS, DataError, plain_file_name_problem, rejection
from whaleid.io.files import atomic_folder, write_csv

SEPARATOR = "__"
# Files a camera, an operating system or a photo editor leaves beside photos: not photos, and
# not a mistake worth a line each in the rejection report.
# Snakemake's mark in a folder it made is one too (the review's export is such a folder). macOS
# copies a "._<name>" beside every photo onto a drive it does not format: an image's name, no image.
IGNORED_FILES = {".DS_Store", "Thumbs.db", "desktop.ini", ".snakemake_timestamp"}
IGNORED_PREFIX = "._"


def _ignored(name: str) -> bool:
    return name in IGNORED_FILES or name.startswith(IGNORED_PREFIX)


def catalogue_photo_name(individual: str, photo: str) -> str:
    """The name of `individual`'s catalogue photo `photo` in the playground layout."""
    prefix = individual + SEPARATOR
    return photo if photo.startswith(prefix) else prefix + photo


@dataclass
class FolderLayout:
    """The photos of a catalogue and of a survey's queries, and what was left out and why."""

    # image (the playground name), id, path (where the photo is)
    catalogue: pd.DataFrame
    # image, path
    queries: pd.DataFrame
    # as the ingest's rejected.csv: image, split, source (the path), row (none), reason
    rejected: list[dict] = field(default_factory=list)


def _left_out(image: str, split: str, path: Path, reason: str) -> dict:
    """The rejected.csv row of an entry of the folders (`ingest.rejection`): its path is its
    source, and no file lists it on a row."""
    return rejection(image, split, str(path), None, reason)


def _entries(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def _photo_problem(entry: os.DirEntry) -> str | None:
    """Why a file in a photo folder is not read as a photo, or None where it is."""
    if entry.is_dir():
        return "a folder inside a photo folder: photos must be directly in it (its contents are not read)"
    if not entry.is_file():
        return "not a regular file"
    problem = plain_file_name_problem(entry.name)
    if problem:
        return problem
    if Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file (accepted: {', '.join(IMAGE_SUFFIXES)})"
    return None


def _photos(folder: Path, split: str, rejected: list[dict]) -> list[str]:
    """The names of the photos directly in `folder`; every other entry is rejected with its reason."""
    names = []
    for entry in _entries(folder):
        if _ignored(entry.name):
            continue
        problem = _photo_problem(entry)
        if problem:
            rejected.append(_left_out(entry.name, split, folder / entry.name, problem))
        else:
            names.append(entry.name)
    return names


def read_folders(catalogue_dir: str | Path, queries_dir: str | Path) -> FolderLayout:
    """The photos of ``catalogue_dir/<id>/`` and ``queries_dir/``, and every entry left out.

    Raises DataError where either folder is missing or the catalogue has no photo at all: that
    is the wrong folder, not a few bad files."""
    catalogue_dir, queries_dir = Path(catalogue_dir), Path(queries_dir)
    for folder, what in ((catalogue_dir, "a folder per individual"), (queries_dir, "the photos to identify")):
        if not folder.is_dir():
            raise DataError(f"{folder}: folder not found; the folders layout needs it, with {what}")
    rejected: list[dict] = []
    catalogue, seen = [], {}
    for entry in _entries(catalogue_dir):
        path = catalogue_dir / entry.name
        if _ignored(entry.name):
            continue
        if not entry.is_dir():
            rejected.append(_left_out(entry.name, "train", path,
                                       "not in an individual's folder: catalogue photos are catalogue/<id>/<photo>"))
            continue
        problem = plain_file_name_problem(entry.name)
        if problem:
            rejected.append(_left_out(entry.name, "train", path, f"individual folder: {problem}"))
            continue
        photos = _photos(path, "train", rejected)
        if not photos:
            rejected.append(_left_out(entry.name, "train", path, "an individual's folder with no photo"))
        for photo in photos:
            image = catalogue_photo_name(entry.name, photo)
            if image in seen:
                # only where an id itself holds the separator: W__1/a.jpg and W/1__a.jpg
                rejected.append(_left_out(image, "train", path / photo,
                                           f"named {image} in the catalogue, as {seen[image]} is: rename one"))
                continue
            seen[image] = path / photo
            catalogue.append((image, entry.name, str(path / photo)))
    if not catalogue:
        raise DataError(f"{catalogue_dir}: no photo in any individual's folder (catalogue/<id>/<photo>)")
    queries = [(name, str(queries_dir / name)) for name in _photos(queries_dir, "test", rejected)]
    return FolderLayout(pd.DataFrame(catalogue, columns=["image", "id", "path"]),
                        pd.DataFrame(queries, columns=["image", "path"]), rejected)


def link_as_playground(layout: FolderLayout, out_dir: str | Path) -> None:
    """Write `layout` at `out_dir` as the playground layout: train.csv (Image,Id, and Path, where
    the photo is), train/ and test/ of links to the photos, and rejected.csv. Each is written
    whole under a temporary name, then renamed: a killed job leaves no half-linked folder."""
    out_dir = Path(out_dir)
    for split, photos in (("train", layout.catalogue), ("test", layout.queries)):
        with atomic_folder(out_dir / split) as partial:
            for image, path in zip(photos["image"], photos["path"]):
                # absolute, so that the links hold wherever the results folder is read from
                os.symlink(os.path.abspath(path), partial / image)
    write_csv(layout.catalogue.rename(columns={"image": "Image", "id": "Id", "path": "Path"}), out_dir / "train.csv")
    write_csv(pd.DataFrame(layout.rejected, columns=REJECTED_COLUMNS).astype({"row": "Int64"}),
              out_dir / "rejected.csv")


def export_catalogue(catalogue: pd.DataFrame, photo_dirs: dict[str, str | Path], out_dir: str | Path) -> int:
    """Write `catalogue` (image, id, split: train or test) as ``out_dir/<id>/<image>``, next
    season's catalogue in the folders layout; `photo_dirs` says where each split's photos are.

    Each photo is a hard link to the photo where the file system allows (no space taken, and it
    outlives the results folder it was listed in), else a copy. Written whole under a temporary
    name, then renamed. Returns how many photos were copied rather than linked."""
    copied = 0
    with atomic_folder(out_dir) as export:
        for image, individual, split in zip(catalogue["image"], catalogue["id"], catalogue["split"]):
            # the photo itself, not the ingest's link to it
            source = os.path.realpath(Path(photo_dirs[split], image))
            (export / individual).mkdir(exist_ok=True)
            try:
                os.link(source, export / individual / image)
            except OSError:
                shutil.copyfile(source, export / individual / image)
                copied += 1
    return copied
