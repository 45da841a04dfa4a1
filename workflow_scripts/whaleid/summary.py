"""`python -m whaleid.summary RESULTS_DIR`: where the submission is and how it scored."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def summarise(results_dir: str | Path) -> str:
    results_dir = Path(results_dir)
    scores = pd.read_csv(results_dir / "scores.csv")
    lines = [f"submission: {(results_dir / 'submission.csv').resolve()}", "MAP@5 (top-1) by method and split:"]
    for row in scores.itertuples():
        lines.append(f"  {row.method:<12} {row.split:<11} MAP@5 {row.map5:.4f}  top-1 {row.top1:.4f}  ({row.n_images} images)")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(sys.argv[1] if len(sys.argv) > 1 else "results"))
