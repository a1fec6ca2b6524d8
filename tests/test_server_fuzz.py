"""Schemathesis fuzzes a real ``timak serve`` from the OpenAPI document it
serves: no request may get a 5xx, and every response must match the
document (status codes, content types, bodies)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from servers import Served

pytestmark = pytest.mark.slow


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    pytest.importorskip("starlette", reason="needs timak[server]")
    program = shutil.which("schemathesis") or shutil.which("st")
    if program is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    with Served(f"sqlite:///{tmp_path / 'timak.db'}", "--log-level", "warning") as served:
        result = subprocess.run(
            [program, "run", f"{served.url}/openapi.json",
             "--checks", "not_a_server_error,response_schema_conformance,"
             "content_type_conformance,status_code_conformance",
             "--phases", "coverage,fuzzing", "--max-examples", "25", "--seed", "23",
             "--workers", "1", "--request-timeout", "10"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert "passed" in result.stdout
        assert "Traceback" not in served.log
