"""MkDocs hook: lay out the `prefect_posthog` namespace where griffe can read it.

The layers live at the repository root (`blocks/`, `tasks/`, `flows/`, `deployments/`) and
the client and emulator under `src/`; pyproject's `[tool.setuptools.package-dir]` joins
them into one package at install time. Griffe reads source from folders, not from that
mapping, so this hook builds `build/docs-namespace/prefect_posthog/` out of symlinks to the
real folders (read from pyproject, so it follows any change there) when MkDocs loads its
configuration, before any page is rendered. `mkdocs serve` sees edits through the links.
"""

from __future__ import annotations

import ast
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = ROOT / "build" / "docs-namespace"


def build_namespace() -> Path:
    """Symlink every package folder of pyproject's mapping into one tree; returns its root."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    shutil.rmtree(NAMESPACE, ignore_errors=True)
    for package, folder in sorted(mapping.items()):
        target = NAMESPACE.joinpath(*package.split("."))
        if "." not in package:  # the top package: a real folder, its own entries linked
            target.mkdir(parents=True)
            for entry in (ROOT / folder).iterdir():
                if entry.name != "__pycache__":
                    (target / entry.name).symlink_to(entry)
        else:
            target.symlink_to(ROOT / folder, target_is_directory=True)
    return NAMESPACE


build_namespace()


# -- every public name of a documented package is on its reference page ---------------------

REFERENCE = {"prefect_posthog.blocks": "reference/blocks", "prefect_posthog.tasks":
             "reference/tasks", "prefect_posthog.flows": "reference/flows",
             "prefect_posthog.client": "reference/client"}
log = logging.getLogger("mkdocs.hooks.namespace")


def _public_names(package: str) -> list[str]:
    init = NAMESPACE.joinpath(*package.split("."), "__init__.py")
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


def _defined_in_source(package: str, name: str) -> bool:
    """Written out as a def, class or plain assignment (not generated at import time)."""
    pattern = re.compile(rf"^(?:def|class) {re.escape(name)}\b|^{re.escape(name)}\s*[:=]",
                         re.MULTILINE)
    folder = NAMESPACE.joinpath(*package.split("."))
    return any(pattern.search(f.read_text()) for f in folder.rglob("*.py"))


def on_post_build(config: Any) -> None:
    """A public name missing from its reference page fails a strict build (a warning)."""
    site = Path(config["site_dir"])
    for package, page in REFERENCE.items():
        text = (site / page / "index.html").read_text()
        missing = [n for n in _public_names(package) if f'id="{package}.{n}"' not in text]
        broken = [n for n in missing if _defined_in_source(package, n)]
        if broken:
            log.warning("%s: not rendered on %s: %s", package, page, ", ".join(broken))
        if generated := sorted(set(missing) - set(broken)):
            log.info("%s: built at import time, so not in the reference: %s", package,
                     ", ".join(generated))
