"""Rule local_identify: every chunk's verified pairs gathered, each shortlisted individual scored (the verifier's
pooled probability, or inliers), new_whale threshold chosen on validation."""

from whaleid.io.files import read_columns, write_csv
from whaleid.io.logs import log_to_file
from whaleid.methods.local.identify import identify
from whaleid.methods.local.verifier import Verifier

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output

answers = identify({"validation": [read_columns(path) for path in i.validation_matches],
                    "test": [read_columns(path) for path in i.test_matches]},
                   i.train_index, i.test_index, i.split, i.manifest, scoring=p.scoring,
                   verifier=Verifier.load(i.verifier[0]) if i.verifier else None, phash_distances=p.phash_distances,
                   thresholds=p.thresholds, reviewed=i.reviewed[0] if i.reviewed else None,
                   encounters=i.encounters[0] if i.encounters else None)
log.info("validation MAP@5 by pooling:\n%s", answers.poolings.to_string(index=False))
log.info("new_whale threshold %g; validation MAP@5 by duplicate distance and threshold:\n%s", answers.chosen,
         answers.curve.to_string(index=False))
for split in ("validation", "test"):
    write_csv(answers.shortlists[split], o[f"{split}_shortlists"])
    write_csv(answers.pairs[split], o[f"{split}_pairs"])
write_csv(answers.poolings, o.poolings)
answers.write(o.validation, o.test, o.threshold_curve)
