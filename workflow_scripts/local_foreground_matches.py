"""Rule local_foreground_matches: one chunk of the fit photos the foreground model asks, matched fold by fold
against their own individual's and the other individuals' photos, and the keypoints each pair matched."""

from whaleid.io.files import write_columns
from whaleid.io.logs import log_to_file
from whaleid.methods.local.chunks import parse_chunk
from whaleid.methods.local.foreground import foreground_matches
from whaleid.settings import ForegroundSettings, MatchSettings

log = log_to_file(snakemake.log[0])
i, p, o, w = snakemake.input, snakemake.params, snakemake.output, snakemake.wildcards

pairs, matches = foreground_matches(i.train, i.train_index, i.split, settings=MatchSettings(**p.settings),
                                    foreground=ForegroundSettings(**p.foreground), image_size=p.image_size,
                                    n_jobs=p.threads, chunk=parse_chunk(w.scatteritem), strongest=p.n_features)
log.info("chunk %s: %d photo pairs checked, %d keypoint matches", w.scatteritem, len(pairs), len(matches))
write_columns(pairs, o.pairs)
write_columns(matches, o.matches)
