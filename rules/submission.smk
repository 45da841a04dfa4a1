# Every method's test predictions become a checked Kaggle submission, and every method is
# scored the same way: on the validation split, and on test where test_truth.csv exists.


rule submission:
    input:
        test=predictions("{method}", "test"),
        manifest=f"{R}/ingest/manifest.csv",
        rejected=f"{R}/ingest/rejected.csv",
    output:
        submission=f"{R}/{{method}}/submission.csv",
    log:
        f"{R}/logs/submission/{{method}}.log",
    benchmark:
        f"{R}/benchmarks/submission/{{method}}.tsv"
    params:
        code=package_code("submission.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/submission.py"


rule score:
    input:
        validation=predictions("{method}", "validation"),
        submission=f"{R}/{{method}}/submission.csv",
        split=f"{R}/validation/split.csv",
        test_truth=test_truth_input(),
        reviewed=reviewed_input(),
    output:
        scores=f"{R}/{{method}}/scores.csv",
    log:
        f"{R}/logs/score/{{method}}.log",
    benchmark:
        f"{R}/benchmarks/score/{{method}}.tsv"
    params:
        code=package_code("score.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/score.py"


rule collect_scores:
    input:
        expand(f"{R}/{{method}}/scores.csv", method=config["methods"]),
    output:
        scores=f"{R}/scores.csv",
        comparison=report(f"{R}/comparison.csv", category="Comparison", caption="../report/comparison.rst"),
    log:
        f"{R}/logs/collect_scores.log",
    benchmark:
        f"{R}/benchmarks/collect_scores.tsv"
    params:
        code=package_code("collect_scores.py"),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/collect_scores.py"


rule chosen_submission:
    input:
        submissions=expand(f"{R}/{{method}}/submission.csv", method=submission_candidates()),
        # to choose by validation MAP@5 when submit is "best"
        scores=f"{R}/scores.csv" if config["submit"] == BEST else [],
    output:
        submission=f"{R}/submission.csv",
        method=f"{R}/submission_method.txt",
    log:
        f"{R}/logs/chosen_submission.log",
    benchmark:
        f"{R}/benchmarks/chosen_submission.tsv"
    params:
        code=package_code("chosen_submission.py"),
        methods=submission_candidates(),
    conda:
        "../envs/whaleid.yaml"
    script:
        "../workflow_scripts/chosen_submission.py"
