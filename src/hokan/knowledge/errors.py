"""Errors of the knowledge app (drawn in the tree of ``hokan.core.errors``)."""

from __future__ import annotations

from hokan.core.errors import HokanError


class KnowledgeError(HokanError):
    """Base of the knowledge app's errors."""


class AnalysisInvalid(KnowledgeError):
    """An analysis JSON fails validation. problems: list of (path, reason) — path like
    ``phases[2].end_s``, reason in Japanese; the message lists them all. Nothing was stored."""

    def __init__(self, problems: list[tuple[str, str]], *, source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        lines = "; ".join(f"{path}: {reason}" for path, reason in self.problems)
        super().__init__(f"{where}分析JSONが不正です（{len(self.problems)}件）: {lines}")


class KnowledgeStoreUnavailable(KnowledgeError):
    """Qdrant cannot be used: the local-mode folder is held by another process, the server does
    not answer, or the collection does not match the embedder (reason in Japanese)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SnapshotError(KnowledgeError):
    """A snapshot cannot be created, found or restored (reason in Japanese)."""
