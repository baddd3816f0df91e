"""Where the benchmark harness keeps its files: the repository, its work and results folders."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The m2mhub checkout this package runs from, or the current directory as a fallback.

    The harness builds mqbench and writes ``benchmarks/README.md`` inside the checkout, so an
    editable install finds it from this file; ``M2MHUB_REPO`` overrides the guess.
    """
    override = os.environ.get("M2MHUB_REPO")
    if override:
        return Path(override).resolve()
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "benchmarks").is_dir():
            return parent
    return Path.cwd()


def work_dir(repo: Path) -> Path:
    """Scratch space for builds, configs and logs (``benchmarks/.work``, git-ignored)."""
    path = repo / "benchmarks" / ".work"
    path.mkdir(parents=True, exist_ok=True)
    return path
