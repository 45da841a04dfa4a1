"""What people decided about a run's test photos, read back, and the catalogue it grows.

In photo-ID work a person confirms every match. The review page (`review_page`) shows each
test photo beside a method's five candidates; a reviewer's decisions come back as a CSV,
``Image,decision,Id`` (`REQUIRED_COLUMNS`; the page also writes ``by``: person or auto), one
row a photo:

- ``confirmed``: the photo is of the known individual ``Id`` (of train, or one a review made);
- ``new``: a new individual. ``Id`` names it; empty, it gets `new_individual_id` of the photo.
  Photos of one new individual seen twice share the ``Id`` ("same as" on the page);
- ``unsure``: nobody could tell; the photo stays out of the catalogue.

`read_decisions` checks every row of every file before anything is used: a decision that names
an image that is not one of the run's test photos or an unknown id, a photo decided twice
differently, or a malformed file is a ValueError naming the file and line. Nothing is half
applied. The confirmed and new photos then join every method's test catalogue, as photos of
their individuals, without retraining (`search.Queries`), and answer first for
themselves.

`catalogue_table` is the catalogue as data: every photo of a known individual, train and
reviewed, and where it came from; `individuals_table` the same by individual, for the next
season's survey. numpy and pandas only.
"""

from __future__ import annotations

import csv
import posixpath
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from whaleid.identification.search import IDENTIFIED
from whaleid.vocabulary import NEW_WHALE

NEW_ID_PREFIX = "new-"


def new_individual_id(image: str) -> str:
    """The stable id a photo decided `new` gets when nobody names it: "new-" + the image name without its extension
    (e.g. "0a1b2c.jpg" -> "new-0a1b2c")."""
    return NEW_ID_PREFIX + posixpath.splitext(image)[0]


DECISIONS = ("confirmed", "new", "unsure")
# The columns a decisions file must have (the review page exports `review_page.EXPORTED_COLUMNS`).
REQUIRED_COLUMNS = ("Image", "decision", "Id")
REVIEWED_COLUMNS = ["image", "id", "decision", "source"]


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise ValueError(f"{path}: no {', '.join(missing)} column: expected a header "
                                 f"{','.join(REQUIRED_COLUMNS)} (the review page's export)")
            rows = []
            for row in reader:
                if None in row:
                    raise ValueError(f"{path}, line {reader.line_num}: more fields than the header's "
                                     f"{len(columns)}")
                rows.append({key.strip(): (value or "").strip() for key, value in row.items()})
            return rows
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    except csv.Error as error:
        raise ValueError(f"{path}: not a readable CSV ({error})") from None


def read_decisions(paths: Sequence[str | Path], test_images: Sequence[str], known_ids: Sequence[str]
                   ) -> pd.DataFrame:
    """The decided photos of the decision files `paths`, read in order: (image, id, decision,
    source: the file), one row a photo, ``unsure`` ones included with an empty id.

    `test_images` are the run's test photos, `known_ids` the train catalogue's individuals.
    A confirmed id must be one of them or a new individual of some decision file. Raises
    ValueError naming the file and line of the first wrong row; the same decision twice is
    kept once."""
    test_images, known = set(test_images), set(known_ids) - {NEW_WHALE}
    read = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ValueError(f"review decisions {path}: file not found")
        for line, row in enumerate(_rows(path), start=2):
            where = f"{path}, line {line}"
            image, decision, individual = row["Image"], row["decision"].lower(), row["Id"]
            if not image:
                raise ValueError(f"{where}: no Image")
            if image not in test_images:
                raise ValueError(f"{where}: {image!r} is not a test photo of this run")
            if decision not in DECISIONS:
                raise ValueError(f"{where}: decision {row['decision']!r}: expected one of {', '.join(DECISIONS)}")
            if decision == "new":
                individual = individual or new_individual_id(image)
                if individual in known:
                    raise ValueError(f"{where}: {image} is decided new but {individual!r} is a known individual: "
                                     "decide it confirmed")
            elif decision == "unsure":
                individual = ""
            if individual == NEW_WHALE:
                raise ValueError(f"{where}: {NEW_WHALE} is no individual: decide the photo new, or unsure")
            read.append((image, individual, decision, str(path), where))
    new_ids = {individual for _, individual, decision, _, _ in read if decision == "new"}
    decided: dict[str, tuple] = {}
    for image, individual, decision, source, where in read:
        if decision == "confirmed" and individual not in known | new_ids:
            raise ValueError(f"{where}: {image} is confirmed as {individual!r}, which is neither a known individual "
                             "nor a new one of the decisions" if individual else f"{where}: confirmed without an Id")
        earlier = decided.get(image)
        if earlier is None:
            decided[image] = (image, individual, decision, source, where)
        elif earlier[1:3] != (individual, decision):
            raise ValueError(f"{where}: {image} is decided {decision} {individual!r}, but {earlier[4]} decided it "
                             f"{earlier[2]} {earlier[1]!r}: keep one")
    return pd.DataFrame([row[:4] for row in decided.values()], columns=REVIEWED_COLUMNS)


def identified(reviewed: pd.DataFrame) -> pd.DataFrame:
    """The reviewed photos that join the catalogue: confirmed and new (image, id, decision, source)."""
    return reviewed[reviewed["decision"].isin(IDENTIFIED)].reset_index(drop=True)


def catalogue_table(train: pd.DataFrame, reviewed: pd.DataFrame) -> pd.DataFrame:
    """Every photo of a known individual: the `train` photos (image, id) but new_whale's, then
    the `reviewed` photos that are confirmed or new. Columns image, id, split (train or test),
    source (train, or the decision file), decision (empty for train)."""
    train = train.loc[train["id"] != NEW_WHALE, ["image", "id"]].assign(split="train", source="train", decision="")
    added = identified(reviewed)[["image", "id", "source", "decision"]].assign(split="test")
    columns = ["image", "id", "split", "source", "decision"]
    return pd.concat([train[columns], added[columns]], ignore_index=True)


def individuals_table(catalogue: pd.DataFrame) -> pd.DataFrame:
    """The catalogue by individual, one row each, as a spreadsheet opens it: id, photos, of them
    from train and from review, new (whether a review made it), and the photos' names
    (space-separated, train first)."""
    rows = []
    for individual, photos in catalogue.groupby("id", sort=True):
        from_review = photos["split"] == "test"
        rows.append({"id": individual, "photos": len(photos), "train_photos": int((~from_review).sum()),
                     "reviewed_photos": int(from_review.sum()), "new": bool((photos["decision"] == "new").any()),
                     "images": " ".join(photos["image"])})
    return pd.DataFrame(rows, columns=["id", "photos", "train_photos", "reviewed_photos", "new", "images"])
