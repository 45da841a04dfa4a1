"""Rule local_identify: each photo's shortlist verified geometrically, new_whale threshold (in
inliers) chosen on validation."""

from whaleid.files import write_csv
from whaleid.local.matching import identify
from whaleid.logs import Progress, log_to_file
from whaleid.settings import MatchSettings

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output
bars = {}
answers = identify(i.train, i.train_index, i.test, i.test_index, i.split, i.manifest,
                   settings=MatchSettings(**p.settings), image_size=p.image_size, phash_distances=p.phash_distances,
                   thresholds=p.thresholds, n_jobs=p.threads,
                   progress=lambda label, done, total: bars.setdefault(label, Progress(log, f"matched {label}"))(done,
                                                                                                               total))
log.info("new_whale threshold %g inliers; validation MAP@5 by duplicate distance and threshold:\n%s", answers.chosen,
         answers.curve.to_string(index=False))
write_csv(answers.shortlists["validation"], o.validation_shortlists)
write_csv(answers.shortlists["test"], o.test_shortlists)
answers.write(o.validation, o.test, o.threshold_curve)
