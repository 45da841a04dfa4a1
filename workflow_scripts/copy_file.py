"""Rule chosen_submission: copy the submission of the method named by `submit`."""

from pathlib import Path

from whaleid.files import write_bytes
from whaleid.logs import log_to_file

log = log_to_file(snakemake.log[0])
write_bytes(Path(snakemake.input[0]).read_bytes(), snakemake.output[0])
log.info("copied %s to %s", snakemake.input[0], snakemake.output[0])
