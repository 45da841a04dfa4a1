"""Which of the package's files a rule script runs, and one digest of them.

Snakemake reruns a job when its rule script changes, but not when a module the script imports
does: after an upgrade of whaleid, results made by the old code would be kept. So each rule's
params carry `code_digest` of its script (rules/common.smk, `package_code`), and a change to any
file the script runs reruns exactly the stages that run it, as a change to a setting does.

The files are found by reading, not importing (`package_files`): from the script's own
``whaleid`` imports on, every module imported (at the top of a module or inside a function,
where the heavy ones are imported late), the ``__init__.py`` of every package on the way (an
import runs them), and the package's data files a module or a template names in quotes (a
page's template, the templates it extends, the style and script it inlines).

Imports are read as the package writes them, by absolute names (`from whaleid.x import y`;
tests/test_package.py holds the package to that), with a pattern rather than a parse: the
Snakefile computes a digest for every rule as it loads, and reading each file's text once keeps
`snakemake -n` fast. A line that only looks like an import (in a docstring) can add a file, never
lose one: a stage reruns once too often rather than not at all. Standard library only.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# `from whaleid.x import a, b` (names in parentheses may run over lines) or `import whaleid.x, ...`,
# at the start of a line, indented or not.
IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)|import[ \t]+([^\n#]*))",
                    re.MULTILINE)
# A data file named in a module or a template: a quoted file name with one of these endings.
DATA_FILE_NAME = re.compile(r"""["']([\w.-]+\.(?:j2|html|css|js))["']""")
# Characters of the hex digest a rule's params keep: enough to tell versions apart, short to read.
DIGEST_LENGTH = 16


@functools.cache
def _module_file(name: str, package: Path) -> Path | None:
    """The file of module `name` (a .py, or a package's __init__.py), or None where there is none."""
    parts = name.split(".")
    if parts[0] != package.name:
        return None
    base = package.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _data_files(package: Path) -> dict[str, tuple[Path, ...]]:
    """Every data file of the package (not Python, not bytecode), by its file name."""
    files: dict[str, list[Path]] = {}
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts:
            files.setdefault(path.name, []).append(path)
    return {name: tuple(paths) for name, paths in files.items()}


def _imported_names(text: str) -> set[str]:
    """Every module a Python text may import: the modules its import statements name, and for
    `from x import y`, x.y too (where y is a module)."""
    names = set()
    for module, imported, plain in IMPORT.findall(text):
        listed = (imported if module else plain).strip("() \t\n").replace("\n", " ")
        items = [item.split(" as ")[0].strip() for item in listed.split(",") if item.strip()]
        names.update([module, *(f"{module}.{item}" for item in items)] if module else items)
    return names


def _version(path: Path) -> tuple[int, int]:
    """What tells an edited file from the one read before, for the caches below."""
    status = path.stat()
    return status.st_mtime_ns, status.st_size


def _files_named_in(path: Path, package: Path) -> frozenset[Path]:
    """The package's files that `path` runs itself: of a module, the modules it imports and the
    packages they lie in; of a module or a template, the data files it names in quotes."""
    return _files_named_in_version(path, package, _version(path))


@functools.cache
def _files_named_in_version(path: Path, package: Path, version: tuple[int, int]) -> frozenset[Path]:
    text = path.read_text(encoding="utf-8")
    data = _data_files(package)
    files = {file for name in DATA_FILE_NAME.findall(text) for file in data.get(name, ())}
    if path.suffix == ".py":
        for name in _imported_names(text):
            parts = name.split(".")
            packages_and_module = (".".join(parts[:end]) for end in range(1, len(parts) + 1))
            files.update(filter(None, (_module_file(name, package) for name in packages_and_module)))
    return frozenset(files)


def package_files(script: str | Path, package: str | Path = PACKAGE) -> list[Path]:
    """Every file of `package` that `script` runs, sorted: the modules it imports, and theirs, the
    packages they lie in, and the data files they name."""
    package = Path(package).resolve()
    seen: set[Path] = set()
    waiting = [Path(script).resolve()]
    while waiting:
        path = waiting.pop()
        for file in _files_named_in(path, package) - seen:
            seen.add(file)
            waiting.append(file)
    return sorted(seen)


@functools.cache
def _file_digest(path: Path, version: tuple[int, int]) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def code_digest(script: str | Path, package: str | Path = PACKAGE) -> str:
    """A digest of the contents of every file `script` runs (`package_files`), with their paths
    in the package: a change to any of them changes it."""
    package = Path(package).resolve()
    digest = hashlib.sha256()
    for path in package_files(script, package):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + _file_digest(path, _version(path)))
    return digest.hexdigest()[:DIGEST_LENGTH]
