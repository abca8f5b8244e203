"""The client used when no provider is configured: it never makes a call.

``available`` is False; a use case checks it first and reports the LLM step as skipped
(rules only, template fallbacks). Calling ``complete_json`` anyway is a programming or
configuration error and raises ``LLMConfigError``.
"""

from __future__ import annotations

from hokan.core.errors import LLMConfigError
from hokan.core.llm.client import Completion, JsonRequest


class OfflineClient:
    """An ``LLMClient`` with ``available = False``; provider "offline", model ""."""

    provider = "offline"
    model = ""
    available = False

    def complete_json(self, request: JsonRequest, *, timeout_s: float | None = None) -> Completion:
        """Never answers.

        Raises:
            LLMConfigError: always ("offline" mode: no LLM provider configured).
        """
        raise LLMConfigError(
            "offline: LLMプロバイダが設定されていないため呼び出せません"
            "(HOKAN_LLM_PROVIDER または APIキーを設定してください)",
            provider=self.provider,
        )

    def __repr__(self) -> str:
        return "OfflineClient()"
