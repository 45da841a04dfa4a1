# The researcher's loop: a page on which a person reviews one method's test answers, the rank-1
# answers that are surely right often enough (on the fit photos' out-of-fold answers, or
# validation's) marked accepted, and the decisions exported from it fed back
# (review.decisions): their photos join every method's catalogue, no retraining.


rule review_catalogue:
    input:
        # the train photos' individuals, and the test photos a decision may name
        split=f"{R}/validation/split.csv",
        manifest=f"{R}/ingest/manifest.csv",
        decisions=DECISION_FILES,
    output:
        # the test photos decided (image, id, decision, source): what the methods read
        reviewed=f"{R}/review/reviewed.csv",
        # every photo of a known individual, train and reviewed, and where it came from
        catalogue=f"{R}/review/catalogue.csv",
        individuals=f"{R}/review/individuals.csv",
    log:
        f"{R}/logs/review_catalogue.log",
    benchmark:
        f"{R}/benchmarks/review_catalogue.tsv"
    params:
        code=package_code("review_catalogue.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/review_catalogue.py"


rule review_page:
    input:
        unpack(lambda wildcards: evidence_input(review_method())),
        unpack(lambda wildcards: fold_answers_input()),
        unpack(lambda wildcards: new_individuals_input()),
        split=f"{R}/validation/split.csv",
        # the photos as the methods read them: the preprocessed squares and their index
        train_images=f"{R}/preprocess/train.npy",
        train_images_index=f"{R}/preprocess/train.csv",
        test_images=f"{R}/preprocess/test.npy",
        test_images_index=f"{R}/preprocess/test.csv",
        # the photos themselves, which the page shows: each one's folder (manifest) and size
        manifest=f"{R}/ingest/manifest.csv",
        train_photos=f"{PHOTOS}/train",
        test_photos=f"{PHOTOS}/test",
        # the catalogue additions' photos, where the page's method shows them (evidence_input)
        added_photos=(catalogue_additions_input("train") if review_method() == "metric_learning" else []),
    output:
        page=f"{R}/review/page.html",
        # a JPEG of each photo the page shows, whole and in colour, which it reads beside it
        thumbnails=directory(f"{R}/review/thumbnails"),
        # the page's queue: each test photo's rank-1 answer, its score, and whether it is accepted
        queue=f"{R}/review/queue.csv",
        auto_accept=f"{R}/review/auto_accept.csv",
    log:
        f"{R}/logs/review_page.log",
    benchmark:
        f"{R}/benchmarks/review_page.tsv"
    params:
        code=package_code("review_page.py"),
        method=review_method(),
        precision=config["review"]["auto_accept_precision"],
        matching=evidence_params(review_method()),
        # what the page calls the run: its data and results folders
        run=f"{os.path.basename(DATA)} in {R}",
        thumbnail_side=config["review"]["thumbnail_side"],
    threads: config["review"]["threads"]
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/review_page.py"


# The catalogue as a folder per individual, as field teams keep one (whaleid.data.folders): next
# season's data_layout folders reads it as its catalogue, under the same names.
rule review_catalogue_folders:
    input:
        catalogue=f"{R}/review/catalogue.csv",
        train=f"{PHOTOS}/train",
        test=f"{PHOTOS}/test",
    output:
        folders=directory(f"{R}/review/catalogue"),
    log:
        f"{R}/logs/review_catalogue_folders.log",
    benchmark:
        f"{R}/benchmarks/review_catalogue_folders.tsv"
    params:
        code=package_code("review_catalogue_folders.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/review_catalogue_folders.py"


# The survey as Wildbook's bulk import takes it (whaleid.review.wildbook), uploaded with its photos.
rule review_wildbook:
    input:
        manifest=f"{R}/ingest/manifest.csv",
        captures=f"{R}/ingest/captures.csv",
        reviewed=f"{R}/review/reviewed.csv",
        encounters=encounters_input(),
    output:
        spreadsheet=f"{R}/review/wildbook_import.csv",
    log:
        f"{R}/logs/review_wildbook.log",
    benchmark:
        f"{R}/benchmarks/review_wildbook.tsv"
    params:
        code=package_code("review_wildbook.py"),
        genus=config["wildbook"]["genus"],
        specific_epithet=config["wildbook"]["specific_epithet"],
        location_id=config["wildbook"]["location_id"],
        occurrence_prefix=config["wildbook"]["occurrence_prefix"],
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/review_wildbook.py"
