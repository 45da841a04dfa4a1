"""Rule score: MAP@5 and top-1 of one method on validation, and on test where truth exists."""

import pandas as pd

from whaleid.files import write_csv
from whaleid.logs import log_to_file
from whaleid.submission import read_predictions, score_predictions

log = log_to_file(snakemake.log[0])
method = snakemake.wildcards.method
split = pd.read_csv(snakemake.input.split, dtype=str, keep_default_na=False)
held_out = split[split["subset"] == "validation"]
truths = {"validation": (snakemake.input.validation, dict(zip(held_out["image"], held_out["truth"])))}
if snakemake.input.test_truth:  # an empty list where the data folder has no test_truth.csv
    test_truth = pd.read_csv(snakemake.input.test_truth[0], dtype=str, keep_default_na=False)
    truths["test"] = (snakemake.input.submission, dict(zip(test_truth["Image"], test_truth["Id"])))
rows = []
for subset, (predictions, truth) in truths.items():
    rows.append({"method": method, "split": subset, **score_predictions(read_predictions(predictions), truth)})
    log.info("%s", rows[-1])
write_csv(pd.DataFrame(rows), snakemake.output.scores)
