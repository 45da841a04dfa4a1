"""Rule report_preprocessing: a few original train photos above their preprocessed squares."""

import numpy as np

from whaleid.io.logs import log_to_file
from whaleid.io.tables import read_table
from whaleid.report.figures import preprocessing_figure

log = log_to_file(snakemake.log[0])
preprocessing_figure(
    np.load(snakemake.input.cache, mmap_mode="r"),
    read_table(snakemake.input.index),
    snakemake.input.images,
    snakemake.output.figure,
)
