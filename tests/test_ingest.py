import hashlib
import json

import pandas as pd
import pytest
from conftest import encode, textured
from test_images import one_colour_tiff, peak_memory_growth

from whaleid.data import images
from whaleid.data.images import UNKNOWN_FORMAT
from whaleid.data.ingest import DataError, build_manifest, plain_file_name_problem, read_train_table


def make_dataset(root, train_rows, test_names, extra_files=None):
    """A playground-layout folder; every image named in the rows gets a real JPEG."""
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    for seed, (image, _) in enumerate(train_rows):
        if plain_file_name_problem(image) is None:
            (root / "train" / image).write_bytes(encode(textured(40, 60, seed=seed)))
    for seed, image in enumerate(test_names):
        (root / "test" / image).write_bytes(encode(textured(40, 60, seed=100 + seed)))
    for relative, data in (extra_files or {}).items():
        (root / relative).write_bytes(data)
    pd.DataFrame(train_rows, columns=["Image", "Id"]).to_csv(root / "train.csv", index=False)
    return root


def folder_digest(root):
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("name, problem", [
    ("a.jpg", None),
    ("../x.jpg", "path"),
    ("/etc/passwd", "absolute"),
    ("C:\\x.jpg", "absolute"),
    ("sub/x.jpg", "path"),
    ("", "empty"),
    (" a.jpg", "spaces"),
    ("..", "path"),
])
def test_image_names_must_be_plain_file_names(name, problem):
    found = plain_file_name_problem(name)
    assert (found is None) if problem is None else (problem in found)


def test_train_table_rows_are_checked_and_named(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("Image,Id\n"
                   "a.jpg,w_1\n"        # row 2 fine
                   "../b.jpg,w_2\n"     # row 3 path
                   "c.jpg,\n"           # row 4 empty id
                   "a.jpg,w_1\n"        # row 5 same again: kept once
                   "d.jpg,w_3\n"        # rows 6 and 7: two ids for one image
                   "d.jpg,w_4\n"
                   "/abs.jpg,w_5\n")    # row 8 absolute
    usable, rejected = read_train_table(csv)
    assert usable["image"].tolist() == ["a.jpg"]
    by_row = {r["row"]: r["reason"] for r in rejected}
    assert "path" in by_row[3]
    assert by_row[4] == "empty Id"
    assert "duplicate of row 2" in by_row[5] and "kept once" in by_row[5]
    assert "different ids (w_3, w_4) on rows 6, 7" in by_row[6] and by_row[6] == by_row[7]
    assert "absolute" in by_row[8]


def test_train_table_with_wrong_columns_names_the_file(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("image,label\na.jpg,w_1\n")
    with pytest.raises(DataError, match=r"train\.csv: missing column\(s\) Image, Id.*found image,label"):
        read_train_table(csv)


def test_manifest_describes_good_images_and_reports_bad_ones(tmp_path):
    rows = [(f"t{i}.jpg", f"w_{i % 5}") for i in range(40)] + [("new.jpg", "new_whale"), ("gone.jpg", "w_1")]
    root = make_dataset(tmp_path / "data", rows, ["q1.jpg", "q2.jpg"],
                        extra_files={"train/t3.jpg": b"", "test/q2.jpg": b"GIF89a nonsense"})
    (root / "train" / "gone.jpg").unlink()
    before = folder_digest(root)
    manifest, rejected = build_manifest(root, max_pixels=10**7, max_rejected_fraction=0.2, n_jobs=2)
    assert folder_digest(root) == before  # the input folder is only read
    assert set(manifest.columns) >= {"image", "split", "id", "width", "height", "channels",
                                     "content_hash", "phash"}
    assert len(manifest[manifest["split"] == "train"]) == 40  # 42 listed, 2 unusable
    assert manifest.loc[manifest["image"] == "q1.jpg", "width"].item() == 60
    reasons = dict(zip(rejected["image"], rejected["reason"]))
    assert reasons["t3.jpg"] == "train/t3.jpg: empty file (0 bytes)"
    assert reasons["gone.jpg"] == "train/gone.jpg: file not found"
    assert "not a readable image" in reasons["q2.jpg"]
    assert rejected.loc[rejected["image"] == "t3.jpg", "row"].item() == 5  # t3 is on row 5 of train.csv


def test_too_many_bad_images_stop_the_run_with_the_first_problems(tmp_path):
    rows = [(f"t{i}.jpg", "w_1") for i in range(10)]
    broken = {f"train/t{i}.jpg": b"not a jpeg" for i in range(3)}
    root = make_dataset(tmp_path / "data", rows, ["q.jpg"], extra_files=broken)
    with pytest.raises(DataError, match=r"3 of 11 listed images are unusable \(27\.3% > "
                                        r"ingest\.max_rejected_fraction=0\.1\).*train\.csv row 2"):
        build_manifest(root, max_pixels=10**7, max_rejected_fraction=0.1)


def test_missing_folder_or_train_csv_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        build_manifest(tmp_path / "nowhere", max_pixels=10**7, max_rejected_fraction=0.1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"train\.csv: not found"):
        build_manifest(tmp_path / "empty", max_pixels=10**7, max_rejected_fraction=0.1)


def test_sample_submission_is_the_list_of_test_images(tmp_path):
    root = make_dataset(tmp_path / "data", [(f"t{i}.jpg", f"w_{i}") for i in range(5)], ["q1.jpg", "q2.jpg"])
    pd.DataFrame({"Image": ["q1.jpg", "q2.jpg", "q3.jpg"], "Id": "new_whale"}).to_csv(
        root / "sample_submission.csv", index=False)
    manifest, rejected = build_manifest(root, max_pixels=10**7, max_rejected_fraction=0.5)
    assert sorted(manifest.loc[manifest["split"] == "test", "image"]) == ["q1.jpg", "q2.jpg"]
    assert rejected.loc[rejected["image"] == "q3.jpg", "reason"].item() == "test/q3.jpg: file not found"


def test_huge_tiffs_are_rejected_from_their_header_and_the_good_images_kept(tmp_path):
    """Two of the issue's hostile files (4.7 MB each, 400 MB each once decoded) among good
    photos: both are named and refused, the run goes on, and it never holds their pixels."""
    rows = [(f"t{i}.jpg", f"w_{i % 5}") for i in range(20)] + [("huge1.tif", "w_1"), ("huge2.tiff", "w_2")]
    hostile = one_colour_tiff(20_000, 20_000)
    root = make_dataset(tmp_path / "data", rows, ["q1.jpg"],
                        extra_files={"train/huge1.tif": hostile, "train/huge2.tiff": hostile})
    printed, growth_mib = peak_memory_growth(
        "import json\nfrom whaleid.data.ingest import build_manifest",
        f"manifest, rejected = build_manifest({str(root)!r}, max_pixels=100_000_000, max_rejected_fraction=0.1)\n"
        "print(json.dumps({'kept': manifest['image'].tolist(), 'rejected': rejected[['image', 'row', 'reason']]"
        ".astype(str).to_dict('records')}))")
    result = json.loads(printed)
    assert sorted(result["kept"]) == sorted([f"t{i}.jpg" for i in range(20)] + ["q1.jpg"])
    too_large = "too large: 20000x20000 pixels exceeds ingest.max_pixels=100000000"
    assert result["rejected"] == [{"image": "huge1.tif", "row": "22", "reason": f"train/huge1.tif: {too_large}"},
                                  {"image": "huge2.tiff", "row": "23", "reason": f"train/huge2.tiff: {too_large}"}]
    assert growth_mib < 50, f"ingest raised the peak memory by {growth_mib:.0f} MiB"


def test_a_format_opencv_reads_but_ingest_does_not_is_rejected_undecoded_whatever_its_name(tmp_path, monkeypatch):
    ok, ppm = images.cv2.imencode(".ppm", textured(40, 60))
    assert ok
    rows = [(f"t{i}.jpg", "w_1") for i in range(9)]
    root = make_dataset(tmp_path / "data", rows, ["q.jpg"], extra_files={"train/t2.jpg": ppm.tobytes()})
    decoded = []
    decode = images.cv2.imdecode

    def recording_decode(buffer, flags):
        decoded.append(bytes(buffer[:2]))
        return decode(buffer, flags)

    monkeypatch.setattr(images.cv2, "imdecode", recording_decode)
    manifest, rejected = build_manifest(root, max_pixels=10**7, max_rejected_fraction=0.2)
    assert rejected[["image", "row", "reason"]].values.tolist() == [["t2.jpg", 4, f"train/t2.jpg: {UNKNOWN_FORMAT}"]]
    assert len(manifest) == 9
    assert decoded == [b"\xff\xd8"] * 9  # the eight train JPEGs and the test one, never the PPM
