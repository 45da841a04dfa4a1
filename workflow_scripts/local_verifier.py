"""Rule local_verifier: the verifier trained and calibrated on the fit photos' verified pairs, gathered from every
chunk (local_verifier_pairs)."""

from whaleid.identification.calibration import expected_calibration_error, reliability
from whaleid.io.files import read_columns, write_csv
from whaleid.io.logs import log_to_file
from whaleid.methods.local.verifier import learn_verifier
from whaleid.settings import VerifierSettings

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output

verifier, pairs, answers = learn_verifier([read_columns(path) for path in i.pairs],
                                          [read_columns(path) for path in i.asked],
                                          verifier_settings=VerifierSettings(**p.verifier),
                                          answers_against=p.fold_answers, n_jobs=p.threads)
table = reliability(pairs["probability"], pairs["same"])
log.info("held-out expected calibration error %.4f:\n%s",
         expected_calibration_error(pairs["probability"], pairs["same"]), table.to_string(index=False))
write_csv(pairs, o.pairs)
write_csv(table, o.reliability)
write_csv(answers, o.fold_answers)
verifier.save(o.model)
