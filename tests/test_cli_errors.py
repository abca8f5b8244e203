"""A configuration error reaches the user as one Japanese line and exit 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_hokan(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    full_env.update(HOKAN_DATA_DIR=str(tmp_path), REDIS_URL="", **env)
    subprocess.run([sys.executable, "-m", "hokan", "manage", "migrate", "-v0"], cwd=REPO_ROOT, env=full_env,
                   check=True, capture_output=True, text=True)
    return subprocess.run([sys.executable, "-m", "hokan", *args], cwd=REPO_ROOT, env=full_env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize(("env", "setting"), [
    ({"HOKAN_LLM_PROVIDER": "openai_compatible", "HOKAN_LLM_BASE_URL": "http://127.0.0.1:9/v1"}, "HOKAN_LLM_MODEL"),
    ({"HOKAN_LLM_PROVIDER": "perplexity"}, "PERPLEXITY_API_KEY"),
])
def test_a_provider_without_its_model_or_key_is_named_and_exits_2(tmp_path, env, setting):
    result = run_hokan(tmp_path, "leads", "enrich", "--limit", "1", **env)
    assert result.returncode == 2, result.stderr
    assert setting in result.stderr
    assert "Traceback" not in result.stderr + result.stdout and "╭" not in result.stderr
