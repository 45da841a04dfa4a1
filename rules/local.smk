# Identification by local features, no network trained: SIFT keypoints of every photo, each
# weighed by how likely it lies on the animal (a foreground model learned from which keypoints
# verify between the fit photos of one individual and which between two), a shortlist of
# individuals by descriptor voting, a geometric check of each (HotSpotter's way), judged by a
# verifier learned from how the fit photos match each other.


# Each split's photos, the fit photos the foreground model and the verifier ask, and each
# search's queries, in local.chunks chunks (`--set-scatter local_photos=N local_fit_queries=N
# local_queries=N`), one job each; whole blocks a chunk, so that every count gives the same bytes.
scattergather:
    local_photos=config["local"]["chunks"],
    local_fit_queries=config["local"]["chunks"],
    local_queries=config["local"]["chunks"],


rule local_keypoints_chunk:
    input:
        unpack(keypoint_input),
    output:
        # the chunk's photos' keypoints, joined into the split's cache by local_keypoints
        keypoints=temp(f"{R}/local/keypoints/chunks/{{split}}/{{scatteritem}}.npy"),
    log:
        f"{R}/logs/local_keypoints_chunk/{{split}}/{{scatteritem}}.log",
    benchmark:
        f"{R}/benchmarks/local_keypoints_chunk/{{split}}/{{scatteritem}}.tsv"
    wildcard_constraints:
        scatteritem=r"\d+-of-\d+",
    params:
        code=package_code("local_keypoints_chunk.py"),
        settings=stage_settings(settings.KeypointSettings),
        # images per parallel task and resume checkpoint, as for preprocessing; a chunk is whole ones
        chunk_size=config["preprocess"]["chunk_size"],
        # SIFT's descriptors differ by OpenCV's kernels, which the Snakefile holds where it is set
        reproducible=config["reproducible"],
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_keypoints_chunk.py"


rule local_keypoints:
    input:
        unpack(keypoint_input),
        chunks=keypoint_chunks,
    output:
        keypoints=f"{R}/local/keypoints/{{split}}.npy",
        index=f"{R}/local/keypoints/{{split}}.csv",
    log:
        f"{R}/logs/local_keypoints/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/local_keypoints/{{split}}.tsv"
    params:
        code=package_code("local_keypoints.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_keypoints.py"


rule local_foreground_matches:
    input:
        train=f"{R}/local/keypoints/train.npy",
        train_index=f"{R}/local/keypoints/train.csv",
        split=f"{R}/validation/split.csv",
    output:
        # the chunk's checked photo pairs and their keypoints' matches, as local_foreground reads them
        pairs=f"{R}/local/foreground/chunks/{{scatteritem}}.pairs.npz",
        matches=f"{R}/local/foreground/chunks/{{scatteritem}}.matches.npz",
    log:
        f"{R}/logs/local_foreground_matches/{{scatteritem}}.log",
    benchmark:
        f"{R}/benchmarks/local_foreground_matches/{{scatteritem}}.tsv"
    wildcard_constraints:
        scatteritem=r"\d+-of-\d+",
    params:
        code=package_code("local_foreground_matches.py"),
        # each photo's strongest keypoints: where more are found than kept, the first pass
        n_features=config["local"]["n_features"],
        image_size=keypoint_side(),
        settings=stage_settings(settings.MatchSettings),
        foreground=stage_settings(settings.ForegroundSettings),
        threads=config["local"]["threads"],
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_foreground_matches.py"


rule local_foreground:
    input:
        pairs=gather.local_fit_queries(f"{R}/local/foreground/chunks/{{scatteritem}}.pairs.npz"),
        matches=gather.local_fit_queries(f"{R}/local/foreground/chunks/{{scatteritem}}.matches.npz"),
        train=f"{R}/local/keypoints/train.npy",
        train_index=f"{R}/local/keypoints/train.csv",
        test=f"{R}/local/keypoints/test.npy",
        split=f"{R}/validation/split.csv",
    output:
        model=f"{R}/local/foreground/model.joblib",
        # every keypoint slot's P(on the animal), in the keypoint caches' layout
        train_weights=f"{R}/local/foreground/train.npy",
        test_weights=f"{R}/local/foreground/test.npy",
        # each fit photo's checked pairs, and how many of its keypoints each labelled
        labels=f"{R}/local/foreground/labels.csv",
    log:
        f"{R}/logs/local_foreground.log",
    benchmark:
        f"{R}/benchmarks/local_foreground.tsv"
    params:
        code=package_code("local_foreground.py"),
        n_features=config["local"]["n_features"],
        image_size=keypoint_side(),
        settings=stage_settings(settings.MatchSettings),
        foreground=stage_settings(settings.ForegroundSettings),
        threads=config["local"]["threads"],
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_foreground.py"


# Where local.detected_per_kept is above 1: of the keypoints found, each photo keeps the
# n_features most likely on the animal, by the foreground model learned from the strongest.
rule local_keypoints_kept:
    input:
        keypoints=f"{R}/local/keypoints/{{split}}.npy",
        weights=f"{R}/local/foreground/{{split}}.npy",
    output:
        keypoints=f"{R}/local/kept/{{split}}.npy",
        weights=f"{R}/local/kept/{{split}}.weights.npy",
    log:
        f"{R}/logs/local_keypoints_kept/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/local_keypoints_kept/{{split}}.tsv"
    params:
        code=package_code("local_keypoints_kept.py"),
        n_features=config["local"]["n_features"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_keypoints_kept.py"


rule local_verifier_pairs:
    input:
        unpack(foreground_input),
        train=kept_keypoints("train"),
        train_index=f"{R}/local/keypoints/train.csv",
        split=f"{R}/validation/split.csv",
    output:
        # the chunk's fit photos' verified pairs and the photos asked, as local_verifier reads them
        pairs=f"{R}/local/verifier/chunks/{{scatteritem}}.pairs.npz",
        asked=f"{R}/local/verifier/chunks/{{scatteritem}}.asked.npz",
    log:
        f"{R}/logs/local_verifier_pairs/{{scatteritem}}.log",
    benchmark:
        f"{R}/benchmarks/local_verifier_pairs/{{scatteritem}}.tsv"
    wildcard_constraints:
        scatteritem=r"\d+-of-\d+",
    params:
        code=package_code("local_verifier_pairs.py"),
        image_size=keypoint_side(),
        settings=stage_settings(settings.MatchSettings),
        verifier=stage_settings(settings.VerifierSettings),
        threads=config["local"]["threads"],
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_verifier_pairs.py"


rule local_verifier:
    input:
        pairs=gather.local_fit_queries(f"{R}/local/verifier/chunks/{{scatteritem}}.pairs.npz"),
        asked=gather.local_fit_queries(f"{R}/local/verifier/chunks/{{scatteritem}}.asked.npz"),
    output:
        model=f"{R}/local/verifier/model.joblib",
        # every fit photo's verified pairs, with the label and the held-out probability
        pairs=f"{R}/local/verifier/training_pairs.csv",
        reliability=f"{R}/local/verifier/reliability.csv",
        # each fit photo asked: its four best answers out of fold, by pooling (the auto-accept
        # threshold is chosen on their rank 1, the new_whale threshold on them all)
        fold_answers=f"{R}/local/verifier/fold_answers.csv",
    log:
        f"{R}/logs/local_verifier.log",
    benchmark:
        f"{R}/benchmarks/local_verifier.tsv"
    params:
        code=package_code("local_verifier.py"),
        verifier=stage_settings(settings.VerifierSettings),
        # not a setting of the pairs, which mark what a survey's catalogue keeps either way
        fold_answers=config["verifier"]["fold_answers"],
        threads=config["local"]["threads"],
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_verifier.py"


rule local_match:
    input:
        unpack(foreground_input),
        train=kept_keypoints("train"),
        train_index=f"{R}/local/keypoints/train.csv",
        test=kept_keypoints("test"),
        test_index=f"{R}/local/keypoints/test.csv",
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
        verifier=verifier_input(),
        reviewed=reviewed_input(),
    output:
        # the chunk's verified pairs and their statistics, as local_identify reads them
        pairs=f"{R}/local/matches/{{search}}/{{scatteritem}}.npz",
    log:
        f"{R}/logs/local_match/{{search}}/{{scatteritem}}.log",
    benchmark:
        f"{R}/benchmarks/local_match/{{search}}/{{scatteritem}}.tsv"
    wildcard_constraints:
        search="|".join(SCORED_SPLITS),
        scatteritem=r"\d+-of-\d+",
    params:
        code=package_code("local_match.py"),
        image_size=keypoint_side(),
        settings=stage_settings(settings.MatchSettings),
        # the configured count, not the cores this machine hands the job: faiss's search and
        # k-means sum in another order on another number of threads
        threads=config["local"]["threads"],
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_match.py"


rule local_identify:
    input:
        unpack(foreground_input),
        validation_matches=gather.local_queries(f"{R}/local/matches/validation/{{scatteritem}}.npz"),
        test_matches=gather.local_queries(f"{R}/local/matches/test/{{scatteritem}}.npz"),
        # self-training matches queries again, against the catalogue grown by those it accepted
        train=kept_keypoints("train"),
        train_index=f"{R}/local/keypoints/train.csv",
        test=kept_keypoints("test"),
        test_index=f"{R}/local/keypoints/test.csv",
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
        verifier=verifier_input(),
        fold_answers=threshold_fold_answers(),
        reviewed=reviewed_input(),
        encounters=encounters_input(),
    output:
        **identification_output("local"),
        # every query's shortlisted individuals and their scores, which the fused method reads
        validation_shortlists=f"{R}/local/shortlists/validation.csv",
        test_shortlists=f"{R}/local/shortlists/test.csv",
        # every verified photo pair and its match statistics, one row a pair
        validation_pairs=f"{R}/local/pairs/validation.csv",
        test_pairs=f"{R}/local/pairs/test.csv",
        poolings=f"{R}/local/poolings.csv",
        # the queries self-training accepted: their photos are catalogue photos of the pairs
        pseudo_labels=f"{R}/local/pseudo_labels.csv",
    log:
        f"{R}/logs/local_identify.log",
    benchmark:
        f"{R}/benchmarks/local_identify.tsv"
    params:
        code=package_code("local_identify.py"),
        scoring=config["local"]["scoring"],
        thresholds=local_thresholds(),
        threshold_on=config["local"]["new_whale_threshold_on"],
        # duplicates take first place, up to a pHash distance chosen with the threshold
        phash_distances=duplicate_distances(),
        self_training=config["self_training"],
        image_size=keypoint_side(),
        settings=stage_settings(settings.MatchSettings),
        threads=config["local"]["threads"],
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_identify.py"


rule local_shortlist_recall:
    input:
        validation_shortlists=f"{R}/local/shortlists/validation.csv",
        test_shortlists=f"{R}/local/shortlists/test.csv",
        split=f"{R}/validation/split.csv",
        test_truth=test_truth_input(),
    output:
        recall=f"{R}/local/shortlist_recall.csv",
    log:
        f"{R}/logs/local_shortlist_recall.log",
    benchmark:
        f"{R}/benchmarks/local_shortlist_recall.tsv"
    params:
        code=package_code("local_shortlist_recall.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_shortlist_recall.py"


# The test photos answered new_whale first, matched against each other: those that match surely
# are proposed on the review page as one new individual (new_individuals.propose).
rule local_new_individuals:
    input:
        unpack(foreground_input),
        test_predictions=identification_output("local")["test"],
        train=kept_keypoints("train"),
        train_index=f"{R}/local/keypoints/train.csv",
        test=kept_keypoints("test"),
        test_index=f"{R}/local/keypoints/test.csv",
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
        verifier=f"{R}/local/verifier/model.joblib",
        fold_answers=f"{R}/local/verifier/fold_answers.csv",
        poolings=f"{R}/local/poolings.csv",
        reviewed=reviewed_input(),
    output:
        # each photo proposed with others: its group, the group's size, its surest link
        proposed=f"{R}/local/new_individuals.csv",
    log:
        f"{R}/logs/local_new_individuals.log",
    benchmark:
        f"{R}/benchmarks/local_new_individuals.tsv"
    params:
        code=package_code("local_new_individuals.py"),
        precision=config["new_individuals"]["precision"],
        image_size=keypoint_side(),
        settings=stage_settings(settings.MatchSettings),
        threads=config["local"]["threads"],
    threads: config["local"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/local_new_individuals.py"
