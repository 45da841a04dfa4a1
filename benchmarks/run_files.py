"""Where a finished run keeps what the benchmarks that read it need (each run as
`python benchmarks/<name>.py`, which puts this folder on the import path)."""

from __future__ import annotations

from pathlib import Path


def matched_keypoints(results: Path, split: str) -> tuple[Path, Path, Path | None]:
    """The keypoint cache of `split` the run's local method matched with, its index, and their
    weights (None where it learned none): the keypoints kept on the animal where
    `local.detected_per_kept` was above 1 (`local/kept`), else every keypoint found."""
    local = Path(results) / "local"
    index = local / "keypoints" / f"{split}.csv"
    if (local / "kept" / f"{split}.npy").exists():
        return local / "kept" / f"{split}.npy", index, local / "kept" / f"{split}.weights.npy"
    weights = local / "foreground" / f"{split}.npy"
    return local / "keypoints" / f"{split}.npy", index, weights if weights.exists() else None
