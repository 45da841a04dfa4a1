"""Rule local_verifier: the fit photos matched fold by fold, and the verifier trained and calibrated on their pairs."""

from whaleid.identification.calibration import expected_calibration_error, reliability
from whaleid.io.files import write_csv
from whaleid.io.logs import Progress, log_to_file
from whaleid.methods.local.verifier import learn_verifier
from whaleid.settings import MatchSettings, VerifierSettings

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output
bars = {}


def progress(fold, done, total):
    bars.setdefault(fold, Progress(log, f"matched fold {fold}"))(done, total)


verifier, pairs = learn_verifier(i.train, i.train_index, i.split, settings=MatchSettings(**p.settings),
                                 verifier_settings=VerifierSettings(**p.verifier), image_size=p.image_size,
                                 n_jobs=p.threads,
                                 weights_npy=i.train_weights if "train_weights" in i.keys() else None,
                                 progress=progress)
table = reliability(pairs["probability"], pairs["same"])
log.info("held-out expected calibration error %.4f:\n%s",
         expected_calibration_error(pairs["probability"], pairs["same"]), table.to_string(index=False))
write_csv(pairs, o.pairs)
write_csv(table, o.reliability)
verifier.save(o.model)
