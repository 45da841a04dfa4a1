"""Rule local_match: one chunk of a search's queries matched against its catalogue (a shortlist by voting, then a
geometric check of each), every verified pair's statistics and, with the verifier, its probability."""

from whaleid.io.files import write_columns
from whaleid.io.logs import Progress, log_to_file
from whaleid.methods.local.chunks import parse_chunk
from whaleid.methods.local.identify import match_chunk
from whaleid.methods.local.verifier import Verifier
from whaleid.settings import MatchSettings

log = log_to_file(snakemake.log[0])
i, p, o, w = snakemake.input, snakemake.params, snakemake.output, snakemake.wildcards

chunk, chunks = parse_chunk(w.scatteritem)
pairs = match_chunk(i.train, i.train_index, i.test, i.test_index, i.split, i.manifest, search=w.search, chunk=chunk,
                    chunks=chunks, settings=MatchSettings(**p.settings), image_size=p.image_size,
                    verifier=Verifier.load(i.verifier[0]) if i.verifier else None, n_jobs=p.threads,
                    weights=(i.train_weights, i.test_weights) if "train_weights" in i.keys() else None,
                    reviewed=i.reviewed[0] if i.reviewed else None,
                    progress=Progress(log, f"matched {w.search} chunk {chunk} of {chunks}"))
write_columns(pairs, o.pairs)
