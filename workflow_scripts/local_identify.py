"""Rule local_identify: every chunk's verified pairs gathered, each shortlisted individual scored (the verifier's
pooled probability, or inliers), self-training where it is on, new_whale threshold chosen on the fit photos'
out-of-fold answers or on validation."""

import pandas as pd

from whaleid.identification.fold_threshold import read_fold_answers
from whaleid.io.files import read_columns, write_csv
from whaleid.io.logs import log_to_file
from whaleid.methods.local.identify import SelfTraining, identify, keypoint_matcher
from whaleid.methods.local.verifier import Verifier
from whaleid.settings import MatchSettings

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output

verifier = Verifier.load(i.verifier[0]) if i.verifier else None
self_training = None
if p.self_training["rounds"]:
    matcher = keypoint_matcher((i.train, i.train_index), (i.test, i.test_index), settings=MatchSettings(**p.settings),
                               image_size=p.image_size, verifier=verifier, n_jobs=p.threads,
                               weights=(i.train_weights, i.test_weights) if "train_weights" in i.keys() else None)
    self_training = SelfTraining(p.self_training["rounds"], p.self_training["precision"], matcher)
answers = identify({"validation": [read_columns(path) for path in i.validation_matches],
                    "test": [read_columns(path) for path in i.test_matches]},
                   i.train_index, i.test_index, i.split, i.manifest, scoring=p.scoring, verifier=verifier,
                   phash_distances=p.phash_distances, thresholds=p.thresholds, threshold_on=p.threshold_on,
                   fold_answers=read_fold_answers(i.fold_answers[0]) if i.fold_answers else None,
                   self_training=self_training, reviewed=i.reviewed[0] if i.reviewed else None,
                   encounters=i.encounters[0] if i.encounters else None)
log.info("validation MAP@5 by pooling:\n%s", answers.poolings.to_string(index=False))
log.info("new_whale threshold %g; validation MAP@5 by duplicate distance and threshold (fold_map5: the fit photos' "
         "out-of-fold answers', where it was chosen on them):\n%s", answers.chosen,
         answers.curve.to_string(index=False))
for split in ("validation", "test"):
    write_csv(answers.shortlists[split], o[f"{split}_shortlists"])
    write_csv(answers.pairs[split], o[f"{split}_pairs"])
write_csv(answers.poolings, o.poolings)
write_csv(pd.concat([labels.assign(split=split) for split, labels in answers.pseudo_labels.items()],
                    ignore_index=True)[["split", "image", "id", "probability", "round"]], o.pseudo_labels)
answers.write(o.validation, o.test, o.threshold_curve)
