"""Where the built dashboard lives, and building it when it is missing or older than its sources.

``frontend/build.mjs`` owns the build and its stamp (a hash of every input), so this module only asks it to
build; with the bundle in place and no Node.js around, the bundle is served as it is.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from efedllm.errors import EfedError

HOW_TO_BUILD = "run `make setup` (or `npm ci && npm run build`) in the repository"


def frontend_dir() -> Path:
    from efedllm.chain.compile import project_root

    try:
        return project_root() / "frontend"
    except EfedError:
        return Path(__file__).resolve().parents[2] / "frontend"


def ensure_bundle(*, progress=print) -> Path:
    """The folder with index.html and app.js, built (or rebuilt when stale) when Node.js and esbuild are here."""
    frontend = frontend_dir()
    dist = frontend / "dist"
    node = shutil.which("node")
    buildable = node and (frontend / "build.mjs").is_file() and (frontend.parent / "node_modules" / "esbuild").is_dir()
    if buildable:
        result = subprocess.run(
            [node, str(frontend / "build.mjs")], cwd=frontend.parent, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise EfedError(f"building the dashboard failed: {(result.stderr or result.stdout).strip()[-600:]}")
        if "up to date" not in result.stdout:
            progress(result.stdout.strip())
    if not (dist / "index.html").is_file() or not (dist / "app.js").is_file():
        raise EfedError(f"the dashboard is not built ({dist} has no bundle): {HOW_TO_BUILD}")
    return dist
