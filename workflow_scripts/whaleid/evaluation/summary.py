"""`python -m whaleid.evaluation.summary RESULTS_DIR`: where the submission is and how each method scored."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from whaleid.evaluation.scoring import MEASURES, comparison_table


def format_comparison(table: pd.DataFrame) -> str:
    """The comparison as aligned text, scores to four decimals."""
    shown = table.copy()
    for column in shown.columns:
        if column.endswith(MEASURES):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    return shown.to_string(index=False)


def stage_times(resources: pd.DataFrame) -> pd.DataFrame:
    """Wall and CPU seconds of each rule, its jobs summed (from report/resources.csv: job, rule,
    wall_s, max_rss_mb, cpu_time_s), longest first."""
    totals = resources.groupby("rule", sort=False).agg(jobs=("job", "size"), wall_s=("wall_s", "sum"),
                                                       cpu_time_s=("cpu_time_s", "sum"))
    return totals.sort_values("wall_s", ascending=False, kind="stable").reset_index()


def slowest_stages(times: pd.DataFrame, resources: Path, shown: int = 5) -> str:
    """The `shown` longest stages of `stage_times` on one line, and where every stage's are: the
    console keeps to a screen (a line a stage is already above it)."""
    stages = ", ".join(f"{row.rule} {row.wall_s:.0f} s" + (f" ({row.jobs} jobs)" if row.jobs > 1 else "")
                       for row in times.head(shown).itertuples())
    return f"slowest stages (wall seconds, jobs summed): {stages}; every stage's in {resources.resolve()}"


def summarise(results_dir: str | Path) -> str:
    results_dir = Path(results_dir)
    comparison = comparison_table(pd.read_csv(results_dir / "scores.csv"))
    method = (results_dir / "submission_method.txt").read_text().strip()
    lines = [f"submission: {(results_dir / 'submission.csv').resolve()} (from {method})",
             "MAP@5 and top-1 accuracy by method, on the same validation split (and test where its "
             "truth is known):", format_comparison(comparison)]
    accepted = results_dir / "review" / "auto_accept.csv"
    if accepted.exists():
        review = pd.read_csv(accepted).iloc[0]
        lines.append(f"review page: {(results_dir / 'review' / 'page.html').resolve()} ({review['method']}: "
                     f"{review['test_accepted']} of {review['test_photos']} test photos auto-accepted at "
                     f"{review['precision']:g} precision on {review['chosen_on']}, {review['to_review']} for a person)")
    resources = results_dir / "report" / "resources.csv"
    if resources.exists():
        lines.append(slowest_stages(stage_times(pd.read_csv(resources)), resources))
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(sys.argv[1] if len(sys.argv) > 1 else "results"))
