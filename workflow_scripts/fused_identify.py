"""Rule fused_identify: local-feature and embedding probabilities combined, the weight and new_whale
threshold chosen on validation."""

from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file
from whaleid.methods.fused import identify

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output
answers = identify(i.validation_shortlists, i.test_shortlists, i.verifier, i.train, i.train_index, i.test, i.test_index,
                   i.split, i.manifest, weights=p.weights, calibration=p.calibration, phash_distances=p.phash_distances,
                   thresholds=p.thresholds, aggregate=p.aggregate, top_k=p.top_k,
                   reviewed=i.reviewed[0] if i.reviewed else None, encounters=i.encounters[0] if i.encounters else None)
log.info("validation MAP@5 by fusion weight:\n%s", answers.weights.to_string(index=False))
write_csv(answers.weights, o.weights)
write_csv(answers.calibration, o.calibration)
write_csv(answers.candidates["validation"], o.validation_candidates)
write_csv(answers.candidates["test"], o.test_candidates)
answers.write(o.validation, o.test, o.threshold_curve)
