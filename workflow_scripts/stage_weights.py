"""Rule stage_weights: the ImageNet weights the training jobs need, in their KERAS_HOME's models/,
copied from this machine's Keras cache or downloaded (here, on the submit host)."""

import os

from whaleid.io.logs import log_to_file
from whaleid.learning.pretrained import stage_imagenet_weights

log = log_to_file(snakemake.log[0])
p = snakemake.params
if not p.weights:
    log.info("no method that runs starts from weights: imagenet; nothing to stage")
for wanted, output in zip(p.weights, snakemake.output, strict=True):
    keras_home = os.path.dirname(os.path.dirname(output))  # <keras_home>/models/<file name>
    staged = stage_imagenet_weights(wanted["backbone"], wanted["side"], keras_home)
    if os.path.abspath(staged) != os.path.abspath(output):
        raise RuntimeError(f"staged {staged}, but the rule expected {output}")
