"""Rule local_identify: each photo's shortlist verified geometrically and scored (the verifier's pooled
probability, or inliers), new_whale threshold chosen on validation."""

from whaleid.io.files import write_csv
from whaleid.io.logs import Progress, log_to_file
from whaleid.methods.local.identify import identify
from whaleid.methods.local.verifier import Verifier
from whaleid.settings import MatchSettings

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output
bars = {}


def progress(split, done, total):
    bars.setdefault(split, Progress(log, f"matched {split}"))(done, total)


answers = identify(i.train, i.train_index, i.test, i.test_index, i.split, i.manifest,
                   settings=MatchSettings(**p.settings), image_size=p.image_size, scoring=p.scoring,
                   verifier=Verifier.load(i.verifier[0]) if i.verifier else None, phash_distances=p.phash_distances,
                   thresholds=p.thresholds, n_jobs=p.threads,
                   weights=(i.train_weights, i.test_weights) if "train_weights" in i.keys() else None,
                   reviewed=i.reviewed[0] if i.reviewed else None, encounters=i.encounters[0] if i.encounters else None,
                   progress=progress)
log.info("validation MAP@5 by pooling:\n%s", answers.poolings.to_string(index=False))
log.info("new_whale threshold %g; validation MAP@5 by duplicate distance and threshold:\n%s", answers.chosen,
         answers.curve.to_string(index=False))
for split in ("validation", "test"):
    write_csv(answers.shortlists[split], o[f"{split}_shortlists"])
    write_csv(answers.pairs[split], o[f"{split}_pairs"])
write_csv(answers.poolings, o.poolings)
answers.write(o.validation, o.test, o.threshold_curve)
