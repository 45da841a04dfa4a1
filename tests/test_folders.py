"""A catalogue kept as a folder per individual: read, linked as the playground layout without
touching the source, checked by the ingest, and the review's export read back as a catalogue."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from conftest import encode, textured

from whaleid.data.folders import (
    catalogue_photo_name,
    export_catalogue,
    link_as_playground,
    read_folders,
)
from whaleid.data.ingest import DataError, build_manifest


def photo(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(textured(40, 60, seed=seed)))
    return path


@pytest.fixture
def season(tmp_path):
    """catalogue/<id>/ with two individuals' photos of the same name, queries/ of two photos."""
    data = tmp_path / "season"
    photo(data / "catalogue" / "W-1" / "IMG_0001.jpg", 1)
    photo(data / "catalogue" / "W-1" / "IMG_0002.JPG", 2)
    photo(data / "catalogue" / "W-2" / "IMG_0001.jpg", 3)
    photo(data / "queries" / "q1.jpg", 4)
    photo(data / "queries" / "q2.png", 5)
    return data


def snapshot(folder):
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
            for p in sorted(folder.rglob("*"))}


def test_a_photo_is_named_after_its_individual_once():
    assert catalogue_photo_name("W-1", "IMG_0001.jpg") == "W-1__IMG_0001.jpg"
    # what the review's export writes reads back under the same name, season after season
    assert catalogue_photo_name("W-1", "W-1__IMG_0001.jpg") == "W-1__IMG_0001.jpg"


def test_folders_are_read_as_individuals_and_queries(season):
    layout = read_folders(season / "catalogue", season / "queries")
    assert list(layout.catalogue["image"]) == ["W-1__IMG_0001.jpg", "W-1__IMG_0002.JPG", "W-2__IMG_0001.jpg"]
    assert list(layout.catalogue["id"]) == ["W-1", "W-1", "W-2"]
    assert list(layout.queries["image"]) == ["q1.jpg", "q2.png"]
    assert layout.rejected == []


def test_what_is_not_a_photo_of_an_individual_is_left_out_with_its_path_and_reason(season):
    (season / "catalogue" / "W-3").mkdir()                                   # empty
    (season / "catalogue" / "W-1" / "notes.txt").write_text("seen twice")     # not an image
    photo(season / "catalogue" / "W-2" / "2019" / "a.jpg")                    # nested
    photo(season / "catalogue" / "stray.jpg")                                 # no individual
    (season / "catalogue" / "W-1" / ".DS_Store").write_bytes(b"\0")           # the OS's, ignored
    (season / "catalogue" / "W-1" / "._IMG_0001.jpg").write_bytes(b"\0")      # macOS's, ignored
    photo(season / "queries" / "day2" / "b.jpg")                              # nested in queries
    layout = read_folders(season / "catalogue", season / "queries")
    reasons = {row["source"]: row["reason"] for row in layout.rejected}
    catalogue = season / "catalogue"
    assert set(reasons) == {str(catalogue / "W-3"), str(catalogue / "W-1" / "notes.txt"),
                            str(catalogue / "W-2" / "2019"), str(catalogue / "stray.jpg"),
                            str(season / "queries" / "day2")}
    assert "no photo" in reasons[str(catalogue / "W-3")]
    assert "not an image file" in reasons[str(catalogue / "W-1" / "notes.txt")]
    assert "folder inside" in reasons[str(catalogue / "W-2" / "2019")]
    assert "not in an individual's folder" in reasons[str(catalogue / "stray.jpg")]
    assert "folder inside" in reasons[str(season / "queries" / "day2")]
    # the good photos are all still read
    assert len(layout.catalogue) == 3 and len(layout.queries) == 2


def test_two_photos_that_would_share_a_name_are_both_named_in_the_reason(tmp_path):
    photo(tmp_path / "catalogue" / "A__B" / "c.jpg")
    photo(tmp_path / "catalogue" / "A" / "B__c.jpg")
    (tmp_path / "queries").mkdir()
    layout = read_folders(tmp_path / "catalogue", tmp_path / "queries")
    assert len(layout.catalogue) == 1
    [clash] = layout.rejected
    assert "A__B__c.jpg" in clash["reason"] and "rename one" in clash["reason"]


def test_a_missing_or_photo_less_catalogue_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="catalogue: folder not found"):
        read_folders(tmp_path / "catalogue", tmp_path / "queries")
    (tmp_path / "catalogue" / "W-1").mkdir(parents=True)
    (tmp_path / "queries").mkdir()
    with pytest.raises(DataError, match="no photo in any individual's folder"):
        read_folders(tmp_path / "catalogue", tmp_path / "queries")


def test_the_linked_layout_is_what_ingest_reads_and_the_source_is_untouched(season, tmp_path):
    photo(season / "catalogue" / "W-2" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    before = snapshot(season)
    layout = read_folders(season / "catalogue", season / "queries")
    linked = tmp_path / "results" / "data"
    link_as_playground(layout, linked)
    assert snapshot(season) == before
    assert sorted(os.listdir(linked)) == ["rejected.csv", "test", "train", "train.csv"]
    train = pd.read_csv(linked / "train.csv", dtype=str)
    assert list(train.columns) == ["Image", "Id", "Path"]
    assert (linked / "train" / "W-2__IMG_0001.jpg").resolve() == season / "catalogue" / "W-2" / "IMG_0001.jpg"

    manifest, rejected = build_manifest(linked, max_pixels=10**7, max_rejected_fraction=0.5)
    assert sorted(manifest.loc[manifest["split"] == "test", "image"]) == ["q1.jpg", "q2.png"]
    assert dict(zip(manifest["image"], manifest["id"]))["W-1__IMG_0002.JPG"] == "W-1"
    # an unreadable photo is named where it is, the file a person must fix
    [bad] = rejected.itertuples()
    assert bad.reason.startswith(str(season / "catalogue" / "W-2" / "broken.jpg") + ": ")
    # linked again (a photo added), the layout is replaced whole
    photo(season / "catalogue" / "W-3" / "x.jpg", 9)
    link_as_playground(read_folders(season / "catalogue", season / "queries"), linked)
    assert "W-3__x.jpg" in os.listdir(linked / "train")
    assert not [name for name in os.listdir(linked) if name.startswith(".")]


def test_the_exported_catalogue_reads_back_as_the_same_individuals_under_the_same_names(season, tmp_path):
    layout = read_folders(season / "catalogue", season / "queries")
    linked = tmp_path / "results" / "data"
    link_as_playground(layout, linked)
    # this season's catalogue: the train photos, and a query a person confirmed as W-2
    catalogue = pd.DataFrame({"image": [*layout.catalogue["image"], "q1.jpg"], "id": [*layout.catalogue["id"], "W-2"],
                              "split": ["train"] * 3 + ["test"]})
    export = tmp_path / "results" / "review" / "catalogue"
    copied = export_catalogue(catalogue, {"train": linked / "train", "test": linked / "test"}, export)
    assert copied == 0  # hard links on one file system
    assert sorted(str(p.relative_to(export)) for p in export.rglob("*.*")) == [
        "W-1/W-1__IMG_0001.jpg", "W-1/W-1__IMG_0002.JPG", "W-2/W-2__IMG_0001.jpg", "W-2/q1.jpg"]
    assert (export / "W-2" / "q1.jpg").read_bytes() == (season / "queries" / "q1.jpg").read_bytes()
    assert not (export / "W-2" / "q1.jpg").is_symlink()

    (tmp_path / "next" / "queries").mkdir(parents=True)
    again = read_folders(export, tmp_path / "next" / "queries")
    assert sorted(zip(again.catalogue["image"], again.catalogue["id"])) == sorted(
        [("W-1__IMG_0001.jpg", "W-1"), ("W-1__IMG_0002.JPG", "W-1"), ("W-2__IMG_0001.jpg", "W-2"),
         ("W-2__q1.jpg", "W-2")])


@pytest.mark.slow
def test_a_catalogue_in_folders_is_ingested_as_its_playground_twin_and_next_season_starts_from_the_export(
        tiny_run, tmp_path):
    from test_workflow import merged, snakemake

    data, results = tiny_run["data"], tiny_run["results"]
    train = pd.read_csv(data / "train.csv", dtype=str)
    season = tmp_path / "season"
    for image, individual in zip(train["Image"], train["Id"]):
        (season / "catalogue" / individual).mkdir(parents=True, exist_ok=True)
        os.symlink(data / "train" / image, season / "catalogue" / individual / image)
    (season / "queries").symlink_to(data / "test")
    (season / "queries_truth.csv").symlink_to(data / "test_truth.csv")
    work = tmp_path / "work"
    work.mkdir()
    config = merged(tiny_run["config"], {"data_dir": str(season)})
    snakemake(work, "--", "results/ingest/manifest.csv", config=config)
    # data_layout auto: no train.csv, so folders; the same photos, each under its individual
    assert "data_layout auto (folders)" in (work / "results" / "logs" / "catalogue_folders.log").read_text()
    twin = pd.read_csv(results / "ingest" / "manifest.csv", dtype=str)
    manifest = pd.read_csv(work / "results" / "ingest" / "manifest.csv", dtype=str)
    assert sorted(zip(manifest["content_hash"], manifest["split"], manifest["id"].fillna(""))) == sorted(
        zip(twin["content_hash"], twin["split"], twin["id"].fillna("")))
    # the whole workflow plans on it, scored against queries_truth.csv
    planned = snakemake(work, "-n", config=config).stdout
    assert "review_catalogue_folders" in planned and "score" in planned

    # next season: this run's export as the catalogue, where it is, and new queries
    export = results / "review" / "catalogue"
    catalogue = pd.read_csv(results / "review" / "catalogue.csv", dtype=str)
    next_season = tmp_path / "next_season"
    (next_season / "queries").mkdir(parents=True)
    os.symlink(data / "test" / sorted(os.listdir(data / "test"))[0], next_season / "queries" / "new.jpg")
    config = merged(tiny_run["config"], {"data_dir": str(next_season), "data_layout": "folders",
                                         "folders": {"catalogue": str(export)}, "results_dir": "next"})
    snakemake(work, "--", "next/ingest/manifest.csv", config=config)
    manifest = pd.read_csv(work / "next" / "ingest" / "manifest.csv", dtype=str)
    catalogued = manifest[manifest["split"] == "train"]
    assert sorted(zip(catalogued["image"], catalogued["id"])) == sorted(
        (catalogue_photo_name(individual, image), individual)
        for image, individual in zip(catalogue["image"], catalogue["id"]))
