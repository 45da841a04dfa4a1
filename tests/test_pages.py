"""What the two pages share (whaleid.review.html): their markup, style and script are files in
templates/, not strings in the Python that fills them in; the script is valid JavaScript; the
style sheets and the script are inlined as they are, and every value as html.escape writes it."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from markupsafe import Markup

import whaleid.review
from whaleid.review.html import TEMPLATES, asset, data_number, format_score, render

PACKAGE = Path(whaleid.review.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
SCRIPTS = sorted(path.name for path in (PACKAGE / "templates").glob("*.js"))

# What markup, a style sheet or a script looks like in a string.
TAG = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*[\s>/]")
CSS_RULE = re.compile(r"\{\s*[a-z-]+\s*:[^{};]*;")
SCRIPT = re.compile(r"\bfunction\s*[\w$]*\s*\(|addEventListener|querySelector|getElementById|\bdocument\.|"
                    r"\"use strict\"")


def page_strings(source: str) -> list[str]:
    """The strings of a module that look like markup, a style sheet or a script: its string
    constants, docstrings and the literal parts of its f-strings."""
    return [node.value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and (TAG.search(node.value) or CSS_RULE.search(node.value) or SCRIPT.search(node.value))]


@pytest.mark.parametrize("source", [
    'PICTURE = f\'<img src="{uri}" alt="{alt}">\'',
    'CAPTION = "1. new_whale<br>threshold"',
    'KEY = "<kbd>n</kbd> new individual"',
    'STYLE = """\\nbody { font-family: sans-serif; margin: 0; }\\n"""',
    'SCRIPT = "(function () { document.body.dataset.order = 1; })();"',
    'HANDLER = "typed.addEventListener(\'keydown\', go)"',
    'def f():\n    """A figure, <figure class="query">, in a docstring."""',
])
def test_markup_style_and_script_in_a_string_are_found(source):
    assert page_strings(source)


@pytest.mark.parametrize("source", [
    'FORMATS = {"probability": "{:.3f}", "inliers": "{:.0f}"}',
    'CLAMP = "< 0.001"',
    'PATH = f"M{x1:.1f} {y1:.1f}L{x2:.1f} {y2:.1f}"',
    'SAFE = json.dumps(value).replace("<", "\\\\u003c")',
    'STATUS = f"auto-accepted: {rank1}"',
])
def test_values_are_not_taken_for_markup(source):
    assert not page_strings(source)


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_the_review_modules_hold_no_markup_style_or_script(module):
    # the pages' markup, style and script are in templates/, where they can be read and checked as such
    assert page_strings(module.read_text(encoding="utf-8")) == []


@pytest.mark.skipif(shutil.which("node") is None,
                    reason="node is not on PATH (Debian package `nodejs`): the pages' scripts cannot be checked")
@pytest.mark.parametrize("script", SCRIPTS)
def test_the_pages_scripts_are_valid_javascript(script):
    checked = subprocess.run(["node", "--check", str(PACKAGE / "templates" / script)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_the_review_page_has_a_script():
    assert "review_page.js" in SCRIPTS


def test_an_asset_is_inlined_as_it_is_and_a_value_escaped_as_html_escape_does():
    text = asset("review_page.js")
    assert isinstance(text, Markup) and text == (TEMPLATES / "review_page.js").read_text(encoding="utf-8")
    page = render("review_page.html.j2", run='r"<&>\'', method="local", score_name="probability", title="t",
                  storage_key="k", n_photos=0, n_answers=5, statement="s", known_ids=[], sections=[], pictures={})
    # the script as the file holds it: not parsed as a template, not escaped
    assert "<script>\n" + str(text) + "</script>\n</body>\n</html>\n" in page
    assert 'data-run="r&quot;&lt;&amp;&gt;&#x27;"' in page


@pytest.mark.parametrize("value, expected", [(0.5, "0.5"), (0.123456789, "0.123457"), (1234567.0, "1.23457e+06"),
                                             (3, "3"), (float("nan"), ""), (float("inf"), ""), (None, "")])
def test_data_attributes_hold_numbers_to_six_significant_digits(value, expected):
    assert data_number(value) == expected


def test_both_pages_write_a_probability_alike():
    # one table, one clamp: a probability is never written as a certainty
    assert format_score(0.99995, "probability") == "> 0.999" and format_score(2e-6, "probability") == "< 0.001"
    assert format_score(0.99995, "similarity") == "1.000"
