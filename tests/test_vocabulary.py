"""The config schema's choices are the vocabulary's: each enum of schemas/config.schema.yaml is one
of whaleid.vocabulary's lists, so a choice is added in both or the suite fails."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from whaleid import vocabulary as v

# Where each enum of the schema stands (its config keys; `[]` for a list's items) and the list it spells.
SCHEMA_ENUMS = {
    "methods[]": v.METHODS,
    "data_layout": v.DATA_LAYOUTS,
    "submit": v.SUBMIT_CHOICES,
    "autoencoder.optimizer": v.OPTIMIZERS,
    "classifier.backbone": v.IMAGENET_BACKBONES,
    "classifier.input": v.INPUT_KINDS,
    "classifier.class_weights": v.CLASS_WEIGHTS,
    "classifier.new_whale": v.NEW_WHALE_MODES,
    "metric_learning.backbone": v.EMBEDDING_BACKBONES,
    "metric_learning.input": v.INPUT_KINDS,
    "metric_learning.aggregate": v.AGGREGATES,
    "local.shortlist_by": v.SHORTLIST_BY,
    "local.transform": v.TRANSFORMS,
    "local.scoring": v.LOCAL_SCORINGS,
    "local.new_whale_threshold_on": v.THRESHOLD_ON,
    "local.foreground": v.FOREGROUNDS,
    "verifier.calibration": v.CALIBRATIONS,
    "verifier.fold_answers": v.FOLD_ANSWERS,
    "fused.calibration": v.CALIBRATIONS,
    "baseline.phash_max_distance": (v.AUTO,),
    "review.method": v.METHODS,
}


def schema_enums(node, path: str = "") -> dict[str, list]:
    """Every enum of a JSON schema, by the dotted config keys it constrains."""
    found = {}
    if isinstance(node, dict):
        if "enum" in node:
            found[path] = node["enum"]
        for key, child in node.get("properties", {}).items():
            found.update(schema_enums(child, f"{path}.{key}" if path else key))
        if "items" in node:
            found.update(schema_enums(node["items"], f"{path}[]"))
        for alternative in node.get("oneOf", []) + node.get("anyOf", []):
            found.update(schema_enums(alternative, path))
    return found


@pytest.fixture(scope="module")
def enums():
    return schema_enums(yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text()))


def test_every_enum_of_the_schema_is_a_list_of_the_vocabulary(enums):
    assert set(enums) == set(SCHEMA_ENUMS), "an enum of the schema is not tied to the vocabulary, or gone"
    for path, choices in enums.items():
        assert tuple(choices) == SCHEMA_ENUMS[path], path


def test_a_choice_the_schema_does_not_list_fails_the_check_with_the_choices():
    v.check_choice("transform", "affine", v.TRANSFORMS)
    with pytest.raises(ValueError, match="unknown transform 'perspective'; expected one of similarity, affine, "
                                         "homography"):
        v.check_choice("transform", "perspective", v.TRANSFORMS)

