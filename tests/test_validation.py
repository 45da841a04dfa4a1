import pandas as pd

from whaleid.data.validation_split import make_validation_split


def train_table():
    rows = []
    for i in range(20):  # 20 ids with 1..4 photos
        rows += [(f"{i:02d}_{k}.jpg", f"w_{i:02d}") for k in range(1 + i % 4)]
    rows += [(f"nw_{k}.jpg", "new_whale") for k in range(20)]
    return pd.DataFrame(rows, columns=["image", "id"])


def test_split_mirrors_the_test_set():
    train = train_table()
    split = make_validation_split(train, single_image_fraction=0.2, new_whale_fraction=0.1, seed=1)
    held = split[split["subset"] == "validation"]
    counts = train["id"].value_counts()
    multi = [i for i, n in counts.items() if n >= 2 and i != "new_whale"]
    singles = [i for i, n in counts.items() if n == 1]
    # one photo of every multi-photo id, its truth is the id and photos of it stay in fit
    for whale_id in multi:
        rows = held[held["id"] == whale_id]
        assert len(rows) == 1 and rows["truth"].item() == whale_id
        assert (split[(split["id"] == whale_id) & (split["subset"] == "fit")]).shape[0] == counts[whale_id] - 1
    # 20% of the 5 one-photo ids leave fit entirely and become new_whale
    moved = held[held["id"].isin(singles)]
    assert len(moved) == 1 and (moved["truth"] == "new_whale").all()
    assert not split[(split["subset"] == "fit") & split["id"].isin(moved["id"])].shape[0]
    assert (held["id"] == "new_whale").sum() == 2


def test_split_is_deterministic_and_ignores_row_order():
    train = train_table()
    a = make_validation_split(train, single_image_fraction=0.2, new_whale_fraction=0.1, seed=1)
    b = make_validation_split(train.sample(frac=1, random_state=3), single_image_fraction=0.2,
                              new_whale_fraction=0.1, seed=1)
    c = make_validation_split(train, single_image_fraction=0.2, new_whale_fraction=0.1, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
