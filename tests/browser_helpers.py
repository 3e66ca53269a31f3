"""The headless-browser harness the page tests share: one node script (playwright-core driving Debian Chromium,
vendored at setup) runs against the live server and prints a JSON report of what it saw."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from server.assets import assets_dir, ensure_assets

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"  # screenshots and reports, kept for CI
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def run_script(script: str, live_server: str, report: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run tests/browser/<script> on the live server; its report (also written to ARTIFACTS/<report>). Fails the test
    when node or Chromium is missing, the script fails or it reports an error."""
    node = shutil.which("node")
    if node is None or not Path(CHROMIUM).exists():
        pytest.fail("node and Chromium are needed: apt-get install -y --no-install-recommends chromium nodejs")
    ensure_assets(REPO)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([node, str(REPO / "tests" / "browser" / script), live_server, str(ARTIFACTS),
                          str(assets_dir(REPO)), *args], capture_output=True, text=True, timeout=timeout, check=False)
    (ARTIFACTS / report).write_text(res.stdout)
    assert res.returncode == 0, res.stderr[-3000:]
    doc: dict[str, Any] = json.loads(res.stdout)
    assert "error" not in doc, doc["error"]
    return doc
