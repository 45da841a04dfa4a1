"""Checking a dataset in the playground layout and describing every usable image in a manifest.

Nothing here writes into the data folder: it is read, and only read.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path, PurePosixPath, PureWindowsPath

import pandas as pd
from joblib import Parallel, delayed

from whaleid.data.images import IMAGE_SUFFIXES, BadImage, inspect_image

MANIFEST_COLUMNS = ["image", "split", "id", "width", "height", "channels", "bit_depth",
                    "color_model", "content_hash", "phash"]
REJECTED_COLUMNS = ["image", "split", "source", "row", "reason"]
KEPT_ONCE = "kept once"


class DataError(ValueError):
    """The dataset cannot be used as it is; the message names the file (and row) to fix."""


def rejection(image: str, split: str, source: str, row: int | None, reason: str) -> dict:
    """One row of rejected.csv (`REJECTED_COLUMNS`): `source` is the file that names the image (or
    the folders layout's path), `row` its row there (None where it has none)."""
    return {"image": image, "split": split, "source": source, "row": row, "reason": reason}


def plain_file_name_problem(name: str) -> str | None:
    """Why `name` is not a plain file name inside its folder, or None when it is."""
    if not name or not name.strip():
        return "empty image name"
    if name != name.strip():
        return f"image name {name!r} has leading or trailing spaces"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or name.startswith("~"):
        return f"image name {name!r} is an absolute path"
    if "/" in name or "\\" in name or name in (".", ".."):
        return f"image name {name!r} is a path, not a plain file name"
    if any(ord(c) < 32 for c in name):
        return f"image name {name!r} contains control characters"
    return None


def read_train_table(csv_path: str | Path) -> tuple[pd.DataFrame, list[dict]]:
    """Read `train.csv` and return (usable rows as image,id,row; rejected rows).

    Rows are numbered as a spreadsheet shows them: the header is row 1, the first image row 2.
    """
    csv_path = Path(csv_path)
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{csv_path}: cannot be read as CSV: {err}") from err
    missing = [c for c in ("Image", "Id") if c not in table.columns]
    if missing:
        raise DataError(f"{csv_path}: missing column(s) {', '.join(missing)}; expected a header "
                        f"'Image,Id', found {','.join(map(str, table.columns)) or 'nothing'}")
    rejected: list[dict] = []
    rows = []
    for index, (image, whale_id) in enumerate(zip(table["Image"], table["Id"])):
        row = index + 2
        problem = plain_file_name_problem(image)
        if problem is None and not whale_id.strip():
            problem = "empty Id"
        elif problem is None and whale_id != whale_id.strip():
            problem = f"Id {whale_id!r} has leading or trailing spaces"
        if problem:
            rejected.append(rejection(image, "train", csv_path.name, row, problem))
        else:
            rows.append((image, whale_id, row))
    usable = pd.DataFrame(rows, columns=["image", "id", "row"])

    # An image listed twice with the same id is harmless and kept once; listed with two
    # different ids it cannot be trusted, so every listing of it is rejected.
    ids_per_image = usable.groupby("image")["id"].nunique()
    conflicting = set(ids_per_image[ids_per_image > 1].index)
    for image, group in usable[usable["image"].isin(conflicting)].groupby("image"):
        rows_text = ", ".join(str(r) for r in group["row"])
        ids_text = ", ".join(sorted(set(group["id"])))
        for row in group["row"]:
            rejected.append(rejection(image, "train", csv_path.name, int(row),
                                       f"listed with different ids ({ids_text}) on rows {rows_text}"))
    usable = usable[~usable["image"].isin(conflicting)]
    repeated = usable.duplicated("image", keep="first")
    for image, row in usable.loc[repeated, ["image", "row"]].itertuples(index=False):
        first = usable.loc[usable["image"] == image, "row"].iloc[0]
        rejected.append(rejection(image, "train", csv_path.name, int(row),
                                   f"duplicate of row {first} (same image and id), {KEPT_ONCE}"))
    return usable[~repeated].reset_index(drop=True), rejected


def list_test_images(data_dir: str | Path) -> tuple[list[str], list[dict]]:
    """The test images a submission must answer: `sample_submission.csv`'s list when the
    folder has one (Kaggle's definitive list), else every image file in `test/`."""
    data_dir = Path(data_dir)
    sample = data_dir / "sample_submission.csv"
    rejected: list[dict] = []
    if sample.exists():
        table = pd.read_csv(sample, dtype=str, keep_default_na=False)
        if "Image" not in table.columns:
            raise DataError(f"{sample}: missing column Image; found {','.join(table.columns)}")
        names = []
        for index, name in enumerate(table["Image"]):
            problem = plain_file_name_problem(name)
            if problem:
                rejected.append(rejection(name, "test", sample.name, index + 2, problem))
            else:
                names.append(name)
        return list(dict.fromkeys(names)), rejected
    test_dir = data_dir / "test"
    if not test_dir.is_dir():
        raise DataError(f"{test_dir}: test folder not found")
    names = sorted(p.name for p in test_dir.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return names, rejected


def shown_path(data_dir: Path, split: str, image: str) -> str:
    """The photo as a rejection names it: where a link in the folders layout points (the
    photo a person must fix), else its place in the data folder."""
    path = data_dir / split / image
    return os.readlink(path) if path.is_symlink() else f"{split}/{image}"


def inspect_file(path: Path, max_pixels: int) -> dict:
    try:
        if not path.is_file():
            return {"error": "file not found"}
        return asdict(inspect_image(path.read_bytes(), max_pixels))
    except BadImage as err:
        return {"error": str(err)}


def build_manifest(data_dir: str | Path, *, max_pixels: int, max_rejected_fraction: float,
                   n_jobs: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check every train and test image and return (manifest, rejected).

    Raises DataError when the layout is wrong or more than `max_rejected_fraction` of the
    images listed are unusable: that many bad files means the wrong folder, not bad luck.
    """
    data_dir = Path(data_dir)
    train_csv = data_dir / "train.csv"
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data folder not found")
    if not train_csv.is_file():
        raise DataError(f"{train_csv}: not found; a data folder needs train.csv, train/ and test/")
    train_rows, rejected = read_train_table(train_csv)
    test_names, test_rejected = list_test_images(data_dir)
    rejected += test_rejected

    entries = [("train", image, whale_id, row) for image, whale_id, row in train_rows.itertuples(index=False)]
    entries += [("test", image, "", None) for image in test_names]
    infos = Parallel(n_jobs=n_jobs, batch_size=32)(
        delayed(inspect_file)(data_dir / split / image, max_pixels) for split, image, _, _ in entries)

    manifest_rows = []
    for (split, image, whale_id, row), info in zip(entries, infos):
        if "error" in info:
            source = "train.csv" if split == "train" else "test/"
            reason = f"{shown_path(data_dir, split, image)}: {info['error']}"
            rejected.append(rejection(image, split, source, row, reason))
        else:
            manifest_rows.append({"image": image, "split": split, "id": whale_id, **info})
    manifest = pd.DataFrame(manifest_rows, columns=MANIFEST_COLUMNS)
    rejected_table = pd.DataFrame(rejected, columns=REJECTED_COLUMNS).astype({"row": "Int64"})

    lost = lost_images(rejected_table)
    listed = len(manifest) + len(lost)
    if listed and len(lost) / listed > max_rejected_fraction:
        examples = "; ".join(f"{r.source} row {r.row}: {r.reason}" if pd.notna(r.row) else r.reason
                             for r in lost.head(5).itertuples())
        raise DataError(f"{data_dir}: {len(lost)} of {listed} listed images are unusable "
                        f"({len(lost) / listed:.1%} > ingest.max_rejected_fraction={max_rejected_fraction}). "
                        f"First problems: {examples}")
    if not (manifest["split"] == "train").any():
        raise DataError(f"{train_csv}: no usable training image")
    return manifest, rejected_table


def lost_images(rejected: pd.DataFrame) -> pd.DataFrame:
    """Rejections that lose an image (a repeated row of the same image loses nothing)."""
    return rejected[~rejected["reason"].str.endswith(KEPT_ONCE)]
