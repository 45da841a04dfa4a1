"""What the two pages (`gallery`, `review_page`) share: their templates and assets, escaping, how scores are written.

The pages' markup is Jinja2 templates in `templates/`, read with importlib.resources so that
they travel with the package; their style sheets and script are files beside them, inlined as
they are (never parsed as templates: a script may hold ``{{`` or ``{#``), so that each page is
one self-contained file that fetches nothing. `render` fills a template in.
"""

from __future__ import annotations

import functools
import html
import json
import math
from importlib.resources import files

import jinja2
from markupsafe import Markup

from whaleid.vocabulary import NEW_WHALE

TEMPLATES = files("whaleid.review") / "templates"
# How each kind of score is written on a page: a calibrated probability, a cosine similarity, a
# count of inliers, or a method's own score of no known scale.
SCORE_FORMATS = {"probability": "{:.3f}", "similarity": "{:.3f}", "inliers": "{:.0f}", "score": "{:.3g}"}


def check_score_name(score_name: str) -> None:
    """Raise ValueError unless `score_name` is a key of SCORE_FORMATS."""
    if score_name not in SCORE_FORMATS:
        raise ValueError(f"unknown score {score_name!r}: expected one of {', '.join(SCORE_FORMATS)}")


def format_score(value: float | None, score_name: str) -> str:
    """`value` as the pages write a `score_name` (a key of SCORE_FORMATS): plain text, empty
    where there is none."""
    check_score_name(score_name)
    if value is None or not math.isfinite(value):
        return ""
    # a calibrated probability of 0.99995 is not a certainty, nor 2e-6 an impossibility
    if score_name == "probability" and not 0.001 <= value <= 0.999:
        return "< 0.001" if value < 0.001 else "> 0.999"
    return SCORE_FORMATS[score_name].format(value)


def data_number(value: float | None) -> str:
    """A number as a page's data attributes hold it, for scripts and tests: empty where there is none."""
    return "" if value is None or not math.isfinite(value) else f"{value:.6g}"


def escape(value) -> Markup:
    """`value` as text in a page, unless it is markup already.

    The pages have always been escaped by `html.escape`, which writes a quote as ``&quot;`` and
    an apostrophe as ``&#x27;`` where markupsafe (Jinja's own escape) writes ``&#34;`` and
    ``&#39;``: the environment puts every value through this one first, so that a page's bytes do
    not depend on which of the two wrote it."""
    if hasattr(value, "__html__"):
        return Markup(value)
    return Markup(html.escape(str(value), quote=True))


@functools.cache
def asset(name: str) -> Markup:
    """The text of the style sheet or script `name` in `templates/`, to be inlined as it is."""
    return Markup((TEMPLATES / name).read_text(encoding="utf-8"))


def script_json(value) -> Markup:
    """`value` as JSON that a script element holds as data."""
    # "</script" or "<!--" in a name would end or derail the script element: JSON may write < as \u003c
    return Markup(json.dumps(value).replace("<", "\\u003c"))


def _template_source(name: str) -> str | None:
    template = TEMPLATES / name
    return template.read_text(encoding="utf-8") if template.is_file() else None


ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FunctionLoader(_template_source),
    autoescape=True,
    # every value written goes through the one escape (markup, such as a macro's, passes as it is)
    finalize=escape,
    # a template's lines that hold only a block tag write nothing, and its last line break is the page's
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    # a name a template misspells is an error, not an empty string in the page
    undefined=jinja2.StrictUndefined,
)
ENVIRONMENT.globals.update(asset=asset, NEW_WHALE=NEW_WHALE)
ENVIRONMENT.filters.update(format_score=format_score, data_number=data_number, script_json=script_json,
                           e=escape, escape=escape)


def render(template_name: str, **context) -> str:
    """The page that the template `template_name` in `templates/` makes of `context`."""
    return ENVIRONMENT.get_template(template_name).render(**context)
