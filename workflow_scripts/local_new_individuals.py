"""Rule local_new_individuals: the test photos the local method answered new_whale first, matched against each
other, and those that match surely proposed as photos of one new individual."""

from whaleid.identification.fold_threshold import read_fold_answers
from whaleid.io.files import write_csv
from whaleid.io.logs import log_to_file
from whaleid.methods.local.identify import keypoint_matcher, propose_new_individuals
from whaleid.methods.local.verifier import Verifier
from whaleid.settings import MatchSettings

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output

verifier = Verifier.load(i.verifier)
matcher = keypoint_matcher((i.train, i.train_index), (i.test, i.test_index), settings=MatchSettings(**p.settings),
                           image_size=p.image_size, verifier=verifier, n_jobs=p.threads,
                           weights=(i.train_weights, i.test_weights) if "train_weights" in i.keys() else None)
proposed, _ = propose_new_individuals(i.test_predictions, i.train_index, i.test_index, i.split, i.manifest,
                                      matcher=matcher, verifier=verifier,
                                      fold_answers=read_fold_answers(i.fold_answers), poolings_csv=i.poolings,
                                      precision=p.precision, reviewed=i.reviewed[0] if i.reviewed else None)
write_csv(proposed, o.proposed)
