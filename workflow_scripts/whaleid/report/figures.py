"""The figures and tables of the Snakemake report (`snakemake --report`): what the data holds,
what preprocessing makes of a photo, how each model trained, where the new_whale threshold was
set, and what every job cost.

matplotlib on its Agg canvas (no display, no pyplot state), pandas and numpy; no TensorFlow, so
the report's jobs take seconds. Every figure is written atomically at a fixed size in inches at
`DPI`, so its pixel size is known (`*_SIZE` below).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from whaleid.data.ingest import lost_images
from whaleid.io.files import atomic_output
from whaleid.vocabulary import NEW_WHALE

DPI = 100
DATASET_SIZE = (12.0, 8.0)
EXAMPLE_COLUMN_WIDTH, EXAMPLES_HEIGHT = 3.0, 6.4
TRAINING_PANEL_WIDTH, TRAINING_HEIGHT = 6.0, 4.5
THRESHOLD_SIZE = (9.0, 5.5)
CALIBRATION_SIZE = (13.0, 5.0)
RESOURCES_WIDTH, RESOURCES_ROW_HEIGHT, RESOURCES_MIN_HEIGHT = 12.0, 0.3, 3.0

LOSS_NAMES = {"autoencoder": "mean squared error", "classifier": "cross-entropy",
              "metric_learning": "sub-center ArcFace cross-entropy"}
CURVE_LABELS = {"loss": "training loss", "val_loss": "validation loss", "val_map5": "validation MAP@5",
                "accuracy": "training accuracy"}
THRESHOLD_AXES = {"baseline": "duplicates answered first up to this pHash distance (bits)",
                  "classifier": "new_whale threshold (probability of a known individual)",
                  "metric_learning": "new_whale threshold (cosine similarity to the catalogue)",
                  "local": "new_whale threshold (the individual's score: probability, or verified inliers)",
                  "fused": "new_whale threshold (fused probability)"}
RESOURCE_COLUMNS = ["job", "rule", "wall_s", "max_rss_mb", "cpu_time_s"]


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: str | Path) -> None:
    """Write `figure` as a PNG of exactly its size at `DPI`, atomically."""
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)


def _as_bool(column: pd.Series) -> pd.Series:
    """True/False whether pandas read them as booleans or as strings."""
    return column.astype(str).str.strip().str.lower().isin(["true", "1"])


# --- 1. Dataset statistics --------------------------------------------------------------------

def dataset_table(manifest: pd.DataFrame, rejected: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """The key numbers of the data (quantity, value): train and test images, known individuals
    (new_whale is not one), those with a single photo, new_whale photos, validation images, and
    the rejected images (left out) and rows of rejected.csv (a repeated train.csv row, kept
    once, loses nothing)."""
    train = manifest[manifest["split"] == "train"]
    photos_per_id = train.loc[train["id"] != NEW_WHALE, "id"].value_counts()
    rows = [
        ("train images", len(train)),
        ("test images", int((manifest["split"] == "test").sum())),
        ("individuals", len(photos_per_id)),
        ("individuals with one photo", int((photos_per_id == 1).sum())),
        ("new_whale photos", int((train["id"] == NEW_WHALE).sum())),
        ("validation images", int((split["subset"] == "validation").sum())),
        ("rejected images", len(lost_images(rejected))),
        ("rejected.csv rows", len(rejected)),
    ]
    return pd.DataFrame(rows, columns=["quantity", "value"])


def dataset_figure(manifest: pd.DataFrame, split: pd.DataFrame, path: str | Path) -> None:
    """Four panels: photos per individual, photo sizes, what train photos show, and the
    validation split."""
    figure = _figure(*DATASET_SIZE)
    (per_id, sizes), (kinds, subsets) = figure.subplots(2, 2)
    train = manifest[manifest["split"] == "train"]
    photos_per_id = train.loc[train["id"] != NEW_WHALE, "id"].value_counts()

    # Photos per individual: how many individuals have 1, 2, ... photos.
    spectrum = photos_per_id.value_counts().sort_index()
    per_id.bar(spectrum.index, spectrum.to_numpy(), width=0.8, color="tab:blue")
    if len(spectrum) and spectrum.max() >= 10 * spectrum.min():
        per_id.set_yscale("log")
    per_id.xaxis.set_major_locator(MaxNLocator(integer=True))
    per_id.set_xlabel("photos of the individual in train")
    per_id.set_ylabel("individuals" + (" (log scale)" if per_id.get_yscale() == "log" else ""))
    per_id.set_title("Photos per individual (new_whale excluded)")
    per_id.text(0.97, 0.95, f"{len(photos_per_id)} individuals\n{int((photos_per_id == 1).sum())} with one photo",
                transform=per_id.transAxes, ha="right", va="top")

    # Photo sizes, train and test.
    for name, colour in (("train", "tab:blue"), ("test", "tab:orange")):
        rows = manifest[manifest["split"] == name]
        sizes.scatter(pd.to_numeric(rows["width"]), pd.to_numeric(rows["height"]), s=8, alpha=0.4,
                      color=colour, label=f"{name} ({len(rows)})", edgecolors="none")
    sizes.set_xlabel("width (pixels)")
    sizes.set_ylabel("height (pixels)")
    sizes.set_title("Photo sizes")
    sizes.legend(loc="upper left", markerscale=2)

    # What the train photos show: new_whale, or an individual with one or more photos.
    n_new = int((train["id"] == NEW_WHALE).sum())
    n_single = int((photos_per_id == 1).sum())
    n_repeated = int(photos_per_id[photos_per_id > 1].sum())
    labels = ["new_whale", "individual with one photo", "individual with 2+ photos"]
    counts = [n_new, n_single, n_repeated]
    bars = kinds.barh(labels, counts, color=["tab:red", "tab:gray", "tab:blue"])
    total = max(len(train), 1)
    kinds.bar_label(bars, labels=[f"{c} ({c / total:.0%})" for c in counts], padding=3)
    kinds.set_xlim(0, max(max(counts), 1) * 1.3)
    kinds.invert_yaxis()
    kinds.set_xlabel("train photos")
    kinds.set_title(f"Train photos: {n_new / total:.1%} new_whale")

    # The validation split (split.csv): fit photos, and validation photos by their truth.
    validation = split[split["subset"] == "validation"]
    labels = ["fit (the catalogue)", "validation, known individual", "validation, truth new_whale"]
    counts = [int((split["subset"] == "fit").sum()), int((validation["truth"] != NEW_WHALE).sum()),
              int((validation["truth"] == NEW_WHALE).sum())]
    bars = subsets.barh(labels, counts, color=["tab:blue", "tab:green", "tab:red"])
    subsets.bar_label(bars, padding=3)
    subsets.set_xlim(0, max(max(counts), 1) * 1.2)
    subsets.invert_yaxis()
    subsets.set_xlabel("train photos")
    subsets.set_title("Local validation split (split.csv)")
    save_png(figure, path)


# --- 2. Preprocessing examples ----------------------------------------------------------------

def example_rows(n_rows: int, n_examples: int) -> list[int]:
    """`n_examples` rows spread evenly from first to last (fewer when there are fewer rows)."""
    if n_rows <= 0:
        return []
    return sorted(set(np.linspace(0, n_rows - 1, min(n_examples, n_rows)).round().astype(int).tolist()))


def read_rgb(path: str | Path) -> np.ndarray | None:
    """A photo as 8-bit RGB (grey photos as three equal channels), or None if unreadable."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def preprocessing_figure(cache: np.ndarray, index: pd.DataFrame, images_dir: str | Path, path: str | Path,
                         n_examples: int = 4) -> None:
    """Original photos (from `images_dir`, row i of `index` naming row i of `cache`) above the
    squares (N, size, size) the models read, for `n_examples` rows spread through the cache."""
    if len(index) != len(cache):
        raise ValueError(f"the cache index lists {len(index)} images but the cache has {len(cache)} rows")
    rows = example_rows(len(index), n_examples)
    if not rows:
        raise ValueError("the preprocessed cache is empty: no example to show")
    figure = _figure(EXAMPLE_COLUMN_WIDTH * n_examples, EXAMPLES_HEIGHT)
    axes = figure.subplots(2, n_examples, squeeze=False)
    for column in range(n_examples):
        top, bottom = axes[0, column], axes[1, column]
        top.set_axis_off()
        bottom.set_axis_off()
        if column >= len(rows):
            continue
        row = rows[column]
        image = str(index["image"].iloc[row])
        original = read_rgb(Path(images_dir) / image)
        if original is None:
            top.text(0.5, 0.5, f"{image}\nnot readable", ha="center", va="center", transform=top.transAxes)
        else:
            top.imshow(original)
            top.set_title(f"{image}\noriginal, {original.shape[1]}×{original.shape[0]} px", fontsize=9)
        square = np.asarray(cache[row])
        bottom.imshow(square, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        bottom.set_title(f"preprocessed, {square.shape[1]}×{square.shape[0]} px", fontsize=9)
    figure.suptitle("Preprocessing: original photos (top) and the grey squares the models read (bottom)")
    save_png(figure, path)


# --- 3. Training curves -----------------------------------------------------------------------

def training_figure(history: pd.DataFrame, model: str, path: str | Path) -> None:
    """Loss (training, validation) and scores (validation MAP@5, training accuracy) per epoch
    of `model`'s history.csv, whichever of them it has: one panel for losses, one for scores.
    The epoch kept (the first best validation MAP@5) is starred; training phases (a `phase`
    column) are separated by dashed lines."""
    panels = [[c for c in ("loss", "val_loss") if c in history.columns],
              [c for c in ("val_map5", "accuracy") if c in history.columns]]
    panels = [columns for columns in panels if columns]
    if not panels or history.empty:
        raise ValueError(f"{model} history has no rows or none of the columns {', '.join(CURVE_LABELS)}; "
                         f"columns: {', '.join(map(str, history.columns))}")
    epochs = (pd.to_numeric(history["epoch"]) if "epoch" in history.columns
              else pd.Series(range(len(history)))).to_numpy()
    figure = _figure(TRAINING_PANEL_WIDTH * len(panels), TRAINING_HEIGHT)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, columns in zip(axes, panels):
        for column in columns:
            ax.plot(epochs, pd.to_numeric(history[column]).to_numpy(), marker="o", label=CURVE_LABELS[column])
        is_loss = columns[0] in ("loss", "val_loss")
        ax.set_ylabel(f"loss ({LOSS_NAMES.get(model, 'as trained')})" if is_loss else "score (0 to 1)")
        ax.set_title("Loss per epoch" if is_loss else "Scores per epoch")
        if "val_map5" in columns:
            scores = pd.to_numeric(history["val_map5"]).to_numpy()
            if np.isfinite(scores).any():
                best = int(np.nanargmax(scores))
                ax.plot(epochs[best], scores[best], marker="*", markersize=16, color="red", linestyle="none",
                        label=f"kept: epoch {epochs[best]:g}, MAP@5 {scores[best]:.3f}")
        if "phase" in history.columns:
            _mark_phases(ax, epochs, history["phase"].astype(str).to_numpy())
        ax.set_xlim(epochs.min() - 0.5, epochs.max() + 0.5)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_xlabel("epoch (as numbered in history.csv, from 0)")
        ax.legend(loc="best", fontsize=9)
        ax.grid(alpha=0.3)
    figure.suptitle(f"Training of the {model} model")
    save_png(figure, path)


def _mark_phases(ax, epochs: np.ndarray, phases: np.ndarray) -> None:
    """Dashed lines between training phases, their names along the top of `ax`."""
    starts = [i for i in range(len(phases)) if i == 0 or phases[i] != phases[i - 1]]
    ends = starts[1:] + [len(phases)]
    for start in starts[1:]:
        ax.axvline(epochs[start] - 0.5, color="gray", linestyle="--", linewidth=1)
    top = ax.secondary_xaxis("top")
    top.set_xticks([(epochs[a] + epochs[b - 1]) / 2 for a, b in zip(starts, ends)],
                   [f"{phases[a]} phase" for a in starts])
    top.tick_params(length=0, labelsize=9, labelcolor="dimgray")


# --- 4. new_whale threshold curves ------------------------------------------------------------

def threshold_figure(curve: pd.DataFrame, method: str, path: str | Path) -> None:
    """Validation MAP@5 against the setting swept on validation: the new_whale `threshold`, one
    line per duplicate `max_distance` where the curve has both; the pHash `max_distance` alone
    for the baseline. The `chosen` row (else the first best) is starred. Where the threshold was
    chosen on the fit photos' out-of-fold answers (a ``fold_map5`` column), their weighted MAP@5
    is drawn beside validation's, dashed."""
    x = "threshold" if "threshold" in curve.columns else "max_distance"
    if x not in curve.columns or "map5" not in curve.columns or curve.empty:
        raise ValueError(f"{method} threshold curve needs rows and columns map5 and threshold or max_distance; "
                         f"columns: {', '.join(map(str, curve.columns))}")
    curve = curve.assign(**{x: pd.to_numeric(curve[x]), "map5": pd.to_numeric(curve["map5"])})
    figure = _figure(*THRESHOLD_SIZE)
    ax = figure.subplots()
    if x == "threshold" and "max_distance" in curve.columns:
        distances = sorted(pd.to_numeric(curve["max_distance"]).unique())
        colours = _colours(len(distances))
        for distance, colour in zip(distances, colours):
            line = curve[pd.to_numeric(curve["max_distance"]) == distance].sort_values(x)
            ax.plot(line[x], line["map5"], color=colour, marker=".", label=f"up to {distance:g} bits")
    else:
        line = curve.sort_values(x)
        ax.plot(line[x], line["map5"], marker="o", color="tab:blue", label="validation MAP@5")
    if "fold_map5" in curve.columns:
        line = curve.drop_duplicates("threshold").sort_values("threshold")
        ax.plot(line["threshold"], pd.to_numeric(line["fold_map5"]), color="black", linestyle="--",
                label="fit photos out of fold\n(where it was chosen)")
    if "chosen" in curve.columns and _as_bool(curve["chosen"]).any():
        chosen, word = curve[_as_bool(curve["chosen"])].iloc[0], "chosen"
    else:
        chosen, word = curve.loc[curve["map5"].idxmax()], "best"
    what = f"threshold {chosen[x]:g}" if x == "threshold" else f"up to {chosen[x]:g} bits"
    several = x == "threshold" and "max_distance" in curve.columns
    if several:
        what += f", duplicates up to {float(chosen['max_distance']):g} bits"
    ax.plot(chosen[x], chosen["map5"], marker="*", markersize=18, color="red", linestyle="none",
            label=word, zorder=5)
    ax.set_xlabel(THRESHOLD_AXES.get(method, x))
    ax.set_ylabel("validation MAP@5")
    ax.set_title(f"{method}: validation MAP@5 against the "
                 + ("new_whale threshold" if x == "threshold" else "duplicate distance")
                 + f"\n{word}: {what}, MAP@5 {chosen['map5']:.4f}")
    if several:  # one line per distance: the legend beside the plot, not over it
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title="duplicates first",
                  title_fontsize=8)
    else:
        ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    save_png(figure, path)


def calibration_figure(first: pd.DataFrame, pairs: pd.DataFrame, threshold: float, method: str,
                       path: str | Path) -> pd.DataFrame:
    """How sure `method` is, on validation, in two panels: a reliability diagram (the
    probability of each query's first-ranked individual, binned, against the share of them that
    were right, beside the verifier's held-out `pairs` reliability, when given), and the
    precision and recall of "new individual" (answering new_whale first: the first-ranked
    probability below the threshold) against the threshold, the chosen `threshold` marked.
    `first`: probability, right, unknown (the query's individual is not in the catalogue) per
    query. Returns the new-individual curve (threshold, precision, recall, chosen)."""
    from whaleid.identification.calibration import new_individual_curve, reliability

    figure = _figure(*CALIBRATION_SIZE)
    left, right = figure.subplots(1, 2)
    left.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    ranked = reliability(first["probability"], first["right"])
    left.plot(ranked["predicted"], ranked["observed"], marker="o", color="tab:blue",
              label=f"first-ranked individual ({len(first)} validation photos)")
    for _, row in ranked.iterrows():
        left.annotate(f"{int(row['pairs'])}", (row["predicted"], row["observed"]), fontsize=7,
                      textcoords="offset points", xytext=(4, -10))
    if len(pairs):
        left.plot(pairs["predicted"], pairs["observed"], marker=".", color="tab:orange",
                  label="verified photo pairs (fit photos, held out)")
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.set_xlabel("predicted probability of the same individual")
    left.set_ylabel("observed share of the same individual")
    left.set_title(f"{method}: reliability on validation (numbers: photos per bin)")
    left.legend(loc="upper left", fontsize=8)
    left.grid(alpha=0.3)
    curve = new_individual_curve(first, threshold)
    right.plot(curve["threshold"], curve["precision"], color="tab:green", label="precision")
    right.plot(curve["threshold"], curve["recall"], color="tab:purple", label="recall")
    chosen = curve[curve["chosen"]].iloc[0]
    for measure, colour in (("precision", "tab:green"), ("recall", "tab:purple")):
        right.plot(chosen["threshold"], chosen[measure], marker="*", markersize=16, color=colour, linestyle="none")
    right.axvline(threshold, color="red", linestyle=":", label=f"chosen threshold {threshold:g}")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1.02)
    right.set_xlabel("new_whale threshold (first-ranked probability below it: a new individual)")
    right.set_title(f'"new individual" on validation: {int(first["unknown"].sum())} of {len(first)} photos are')
    right.legend(loc="best", fontsize=8)
    right.grid(alpha=0.3)
    save_png(figure, path)
    return curve


def _colours(n: int) -> list:
    return [colormaps["viridis"](v) for v in np.linspace(0, 0.9, max(n, 1))][:n]


# --- 5. Resources per job ---------------------------------------------------------------------

def read_benchmarks(folder: str | Path, exclude: Iterable[str | Path] = ()) -> pd.DataFrame:
    """One row per benchmark TSV under `folder` (nested folders too), but those in `exclude`:
    job (the path below `folder` without .tsv, e.g. encode/train), rule (its first part, by this
    workflow's benchmarks/<rule>/<wildcards>.tsv convention), wall_s, max_rss_mb (peak resident
    memory in MB, as Snakemake measures it) and cpu_time_s. A file of several runs (`repeat`)
    gives their mean time and their peak memory; a value Snakemake could not measure (NA) is
    left empty. Sorted by wall time, longest first."""
    folder = Path(folder)
    excluded = {Path(p).resolve() for p in exclude}
    rows = []
    for path in sorted(folder.rglob("*.tsv")):
        if path.resolve() in excluded:
            continue
        table = pd.read_csv(path, sep="\t", na_values=["NA", "-", ""])
        if "s" not in table.columns:
            raise ValueError(f"{path}: not a Snakemake benchmark file (no column s); "
                             f"columns: {', '.join(map(str, table.columns))}")
        job = path.relative_to(folder).with_suffix("").as_posix()

        def column(name: str, how: str, table: pd.DataFrame = table) -> float:
            if name not in table.columns:
                return float("nan")
            values = pd.to_numeric(table[name], errors="coerce")
            return float(getattr(values, how)()) if values.notna().any() else float("nan")

        rows.append({"job": job, "rule": job.split("/")[0], "wall_s": column("s", "mean"),
                     "max_rss_mb": column("max_rss", "max"), "cpu_time_s": column("cpu_time", "mean")})
    table = pd.DataFrame(rows, columns=RESOURCE_COLUMNS)
    return table.sort_values("wall_s", ascending=False, kind="stable", na_position="last").reset_index(drop=True)


def resources_figure(table: pd.DataFrame, path: str | Path) -> None:
    """Bars of wall time and peak memory per job of `read_benchmarks`, longest first."""
    height = max(RESOURCES_MIN_HEIGHT, 1.5 + RESOURCES_ROW_HEIGHT * len(table))
    figure = _figure(RESOURCES_WIDTH, height)
    time_ax, memory_ax = figure.subplots(1, 2, sharey=True)
    if table.empty:
        time_ax.text(0.5, 0.5, "no benchmark files found", ha="center", va="center", transform=time_ax.transAxes)
    positions = np.arange(len(table))
    for ax, column, unit, colour in ((time_ax, "wall_s", "s", "tab:blue"),
                                     (memory_ax, "max_rss_mb", "MB", "tab:purple")):
        values = pd.to_numeric(table[column]).to_numpy(dtype=float)
        bars = ax.barh(positions, np.nan_to_num(values), color=colour)
        ax.bar_label(bars, labels=[_amount(v, unit) for v in values], padding=3, fontsize=8)
        top = np.nanmax(values) if np.isfinite(values).any() else 1.0
        ax.set_xlim(0, max(top, 1e-9) * 1.25)
        ax.grid(axis="x", alpha=0.3)
    time_ax.set_yticks(positions, table["job"].tolist())
    if len(table):
        time_ax.set_ylim(len(table) - 0.5, -0.5)  # longest at the top
    time_ax.set_xlabel("wall time (s)")
    time_ax.set_title("Wall time per job")
    memory_ax.set_xlabel("peak memory, max RSS (MB)")
    memory_ax.set_title("Peak memory per job")
    figure.suptitle("Resources per job (Snakemake benchmark files)")
    save_png(figure, path)


def _amount(value: float, unit: str) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"

