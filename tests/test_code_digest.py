"""whaleid.code_digest: which of the package's files a rule script runs, read from the code, and
a digest that changes with any of them and with nothing else."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO

from whaleid.code_digest import code_digest, package_files

SCRIPTS = REPO / "workflow_scripts"
PACKAGE = SCRIPTS / "whaleid"


def made_up_package(root: Path) -> tuple[Path, Path]:
    """A package `whaleid` beside a rule script: modules imported in each way the package writes
    them (absolute names, a module named in parentheses over lines, inside a function), a page's
    template and the style it inlines, and modules and files the script never reaches."""
    files = {
        "script.py": "import json\nfrom whaleid.maths.add import add\nimport whaleid.page as page\n",
        "whaleid/__init__.py": "",
        "whaleid/maths/__init__.py": '"""Arithmetic."""\n',
        "whaleid/maths/add.py": ("from whaleid.maths import (\n    numbers,\n)\n"
                                 "from whaleid.maths.numbers import ONE as one\n\n\ndef add(a):\n    return a + one\n"),
        "whaleid/maths/numbers.py": "ONE = 1\n",
        "whaleid/page.py": 'def render():\n    from whaleid.late import text\n    return text("page.html.j2")\n',
        "whaleid/late.py": "def text(name):\n    return name\n",
        "whaleid/templates/page.html.j2": '<style>{{ asset("page.css") }}</style>\n',
        "whaleid/templates/page.css": "body { margin: 0; }\n",
        "whaleid/templates/other.css": "p { margin: 0; }\n",
        "whaleid/unused.py": "from whaleid.maths.add import add\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "script.py", root / "whaleid"


def test_the_files_a_script_runs_are_its_imports_theirs_their_packages_and_the_data_files_they_name(tmp_path):
    script, package = made_up_package(tmp_path)
    assert [str(path.relative_to(package)) for path in package_files(script, package)] == [
        "__init__.py", "late.py", "maths/__init__.py", "maths/add.py", "maths/numbers.py", "page.py",
        "templates/page.css", "templates/page.html.j2"]


def test_the_digest_changes_with_each_file_the_script_runs_and_with_no_other(tmp_path):
    script, package = made_up_package(tmp_path)
    digests = {code_digest(script, package)}
    for edited in ("maths/numbers.py", "late.py", "templates/page.css", "maths/__init__.py"):
        path = package / edited
        path.write_text(path.read_text() + "\n")
        digests.add(code_digest(script, package))
    assert len(digests) == 5  # each edit gave a digest of its own
    unchanged = code_digest(script, package)
    for untouched in ("unused.py", "templates/other.css"):
        (package / untouched).write_text("# edited\n")
    assert code_digest(script, package) == unchanged


def test_a_rule_script_runs_its_stage_s_modules_and_not_the_others():
    files = {str(path.relative_to(PACKAGE)) for path in package_files(SCRIPTS / "local_verifier.py")}
    assert {"methods/local/verifier.py", "methods/local/catalogue.py", "identification/calibration.py",
            "io/logs.py", "settings.py", "vocabulary.py", "methods/local/__init__.py", "__init__.py"} <= files
    assert not any(name.startswith(("learning/", "review/", "demo/", "report/")) for name in files), files
    # the fused method imports the verifier inside the function that reads it
    assert PACKAGE / "methods/local/verifier.py" in package_files(SCRIPTS / "fused_identify.py")


def test_a_page_s_rule_runs_its_own_template_style_and_script_and_not_the_other_page_s():
    review = set(package_files(SCRIPTS / "review_page.py"))
    gallery = set(package_files(SCRIPTS / "report_gallery.py"))
    templates = PACKAGE / "review" / "templates"
    shared = {templates / "page.html.j2", templates / "macros.html.j2"}
    assert shared | {templates / "review_page.html.j2", templates / "review_page.css",
                     templates / "review_page.js"} <= review
    assert shared | {templates / "gallery.html.j2", templates / "gallery.css"} <= gallery
    assert not {templates / "gallery.css", templates / "gallery.html.j2"} & review
    assert not {templates / "review_page.js", templates / "review_page.css"} & gallery
