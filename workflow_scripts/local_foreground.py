"""Rule local_foreground: which keypoints lie on the animal, learned from how the fit photos verified (gathered from
every chunk of local_foreground_matches), and every keypoint of train and test weighed by it."""

from whaleid.io.files import read_columns, write_csv
from whaleid.io.logs import log_to_file
from whaleid.methods.local.foreground import learn_foreground, write_weights
from whaleid.settings import ForegroundSettings, MatchSettings

log = log_to_file(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output

model, labels = learn_foreground(i.train, i.train_index, i.split, settings=MatchSettings(**p.settings),
                                 foreground=ForegroundSettings(**p.foreground), image_size=p.image_size,
                                 n_jobs=p.threads, matched=([read_columns(path) for path in i.pairs],
                                                            [read_columns(path) for path in i.matches]),
                                 strongest=p.n_features)
for split in ("train", "test"):
    write_weights(model, i[split], o[f"{split}_weights"])
write_csv(labels.pairs, o.labels)
model.save(o.model)
