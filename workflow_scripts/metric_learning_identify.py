"""Rule metric_learning_identify: each photo's nearest individuals, new_whale threshold chosen on validation."""

from whaleid.io.logs import log_to_file
from whaleid.methods.metric_learning.retrieval import identify
from whaleid.settings import threshold_grid

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output
answers = identify(i.train, i.train_index, i.test, i.test_index, i.split, i.manifest,
                   phash_distances=p.phash_distances, thresholds=threshold_grid(**p.threshold_grid),
                   aggregate=p.aggregate, top_k=p.top_k, additions=tuple(i.additions) or None,
                   reviewed=i.reviewed[0] if i.reviewed else None, encounters=i.encounters[0] if i.encounters else None)
log.info("new_whale threshold %g; validation MAP@5 by duplicate distance and threshold:\n%s", answers.chosen,
         answers.curve.to_string(index=False))
answers.write(o.validation, o.test, o.threshold_curve)
