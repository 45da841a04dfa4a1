"""Which of the package's files a rule script runs, and one digest of them.

Snakemake reruns a job when its rule script changes, but not when a module the script imports
does: after an upgrade of whaleid, results made by the old code would be kept. So each rule's
params carry `code_digest` of its script (rules/common.smk, `package_code`), and a change to any
file the script runs reruns exactly the stages that run it, as a change to a setting does.

The files are found by reading, not importing (`package_files`): from the script's own
``whaleid`` imports on, every module imported (at the top of a module or inside a function,
where the heavy ones are imported late), the ``__init__.py`` of every package on the way (an
import runs them), and the package's data files a module names (a page's template, by its file
name) or a template names in turn (the style and script it inlines).

Standard library only, and nothing is imported: the Snakefile computes it for every rule as it
loads, and `snakemake -n` must stay fast.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# Where a template names another file: a quoted file name with one of these endings.
DATA_FILE_NAME = re.compile(r"""["']([\w.-]+\.(?:j2|html|css|js))["']""")
# Characters of the hex digest a rule's params keep: enough to tell versions apart, short to read.
DIGEST_LENGTH = 16


def _module_name(path: Path, package: Path) -> str | None:
    """`path`'s module name (whaleid.x.y), or None where it lies outside the package."""
    try:
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
    except ValueError:
        return None
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


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


@functools.cache
def _files_named_in(path: Path, package: Path) -> frozenset[Path]:
    """The package's files that `path` runs itself: of a module, the modules it imports anywhere in
    it, the packages they lie in, and the data files its strings name; of a template, the data
    files it names in quotes."""
    text = path.read_text(encoding="utf-8")
    data = _data_files(package)
    if path.suffix != ".py":
        return frozenset(file for name in DATA_FILE_NAME.findall(text) for file in data.get(name, ()))
    here = _module_name(path, package)
    modules, files = set(), set()
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if here is None:
                    continue
                # a module's package is its name less the last part; a package's is itself
                base = here.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[:len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            modules.add(module)
            # `from whaleid.x import y` imports module whaleid.x.y where there is one
            modules.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in data:
            files.update(data[node.value])
    for name in modules:
        parts = name.split(".")
        files.update(filter(None, (_module_file(".".join(parts[:end]), package) for end in range(1, len(parts) + 1))))
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


def code_digest(script: str | Path, package: str | Path = PACKAGE) -> str:
    """A digest of the contents of every file `script` runs (`package_files`), with their paths
    in the package: a change to any of them changes it."""
    package = Path(package).resolve()
    digest = hashlib.sha256()
    for path in package_files(script, package):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:DIGEST_LENGTH]
