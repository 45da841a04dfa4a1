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
        # the pictures: the preprocessed squares, whatever the method read
        train_images=f"{R}/preprocess/train.npy",
        train_images_index=f"{R}/preprocess/train.csv",
        test_images=f"{R}/preprocess/test.npy",
        test_images_index=f"{R}/preprocess/test.csv",
    output:
        page=f"{R}/review/page.html",
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
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/review_page.py"
