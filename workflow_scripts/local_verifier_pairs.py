"""Rule local_verifier_pairs: one chunk of the fit photos the verifier asks, matched fold by fold against the other
folds' photos, and their verified pairs' statistics."""

from whaleid.io.files import write_columns
from whaleid.io.logs import Progress, log_to_file
from whaleid.methods.local.chunks import parse_chunk
from whaleid.methods.local.verifier import verifier_pairs
from whaleid.settings import MatchSettings, VerifierSettings

log = log_to_file(snakemake.log[0])
i, p, o, w = snakemake.input, snakemake.params, snakemake.output, snakemake.wildcards
bars = {}


def progress(fold, done, total):
    bars.setdefault(fold, Progress(log, f"matched fold {fold}"))(done, total)


pairs, asked = verifier_pairs(i.train, i.train_index, i.split, settings=MatchSettings(**p.settings),
                              verifier_settings=VerifierSettings(**p.verifier), image_size=p.image_size,
                              n_jobs=p.threads, weights_npy=i.train_weights if "train_weights" in i.keys() else None,
                              chunk=parse_chunk(w.scatteritem), progress=progress)
log.info("chunk %s: %d fit photos asked, %d verified pairs", w.scatteritem, len(asked), len(pairs))
write_columns(pairs, o.pairs)
write_columns(asked, o.asked)
