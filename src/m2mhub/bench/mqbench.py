"""Finding, and if needed building, the ``mqbench`` load generator.

mqbench is a Rust program (standard library only) shipped as source next to the repository in
``../shared/tools/mqbench``. The harness copies that source into ``benchmarks/.work/mqbench`` and
runs ``cargo build --release`` there, so a fresh machine needs only cargo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from m2mhub.bench.paths import work_dir


class MqbenchError(RuntimeError):
    """mqbench could not be found or built."""


def source_candidates(repo: Path) -> list[Path]:
    """Places where the mqbench source may live, the most specific first."""
    candidates: list[Path] = []
    override = os.environ.get("MQBENCH_SRC")
    if override:
        candidates.append(Path(override))
    candidates.append(repo.parent / "shared" / "tools" / "mqbench")
    candidates.append(Path("/work/shared/tools/mqbench"))
    return candidates


def find_source(repo: Path) -> Path:
    for candidate in source_candidates(repo):
        if (candidate / "Cargo.toml").is_file():
            return candidate
    looked = ", ".join(str(c) for c in source_candidates(repo))
    raise MqbenchError(f"mqbench source not found (looked in {looked}; set MQBENCH_SRC)")


def _newest_mtime(tree: Path) -> float:
    files = [tree / "Cargo.toml", *(tree / "src").rglob("*.rs")]
    return max(f.stat().st_mtime for f in files if f.is_file())


def ensure_mqbench(repo: Path, log: bool = True) -> Path:
    """Path of a built mqbench binary, copying the source and building it when missing or stale.

    ``MQBENCH`` names a ready binary and skips the build.
    """
    ready = os.environ.get("MQBENCH")
    if ready:
        return Path(ready)
    build_dir = work_dir(repo) / "mqbench"
    binary = build_dir / "target" / "release" / "mqbench"
    source = find_source(repo)
    stale = not binary.is_file() or _newest_mtime(source) > binary.stat().st_mtime
    if not stale:
        return binary
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    if not Path(cargo).is_file():
        raise MqbenchError("cargo not found: install Rust (rustup or apt-get install cargo)")
    if build_dir.exists():
        # Refresh the sources but keep target/ so the rebuild is incremental.
        for item in ("Cargo.toml", "Cargo.lock", "src"):
            old = build_dir / item
            if old.is_dir():
                shutil.rmtree(old)
            elif old.exists():
                old.unlink()
    build_dir.mkdir(parents=True, exist_ok=True)
    for item in ("Cargo.toml", "Cargo.lock", "src", "README.md"):
        src = source / item
        if src.is_dir():
            shutil.copytree(src, build_dir / item)
        elif src.is_file():
            shutil.copy2(src, build_dir / item)
    # The shared source may be read-only; the copy must stay writable for the next refresh.
    for copied in build_dir.rglob("*"):
        if "target" not in copied.relative_to(build_dir).parts:
            copied.chmod(0o755 if copied.is_dir() else 0o644)
    if log:
        print(f"building mqbench in {build_dir} (cargo build --release) ...", flush=True)
    done = subprocess.run(
        [cargo, "build", "--release", "--quiet"],
        cwd=build_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not binary.is_file():
        raise MqbenchError(f"cargo build --release failed in {build_dir}:\n{done.stderr}")
    binary.touch()
    return binary


def mqbench_version(source: Path) -> str:
    """The ``version = "..."`` of mqbench's Cargo.toml."""
    for line in (source / "Cargo.toml").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "version":
            return value.strip().strip('"')
    return "unknown"
