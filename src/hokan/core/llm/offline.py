"""The client used when no provider is configured: it never makes a call.

``available`` is False; a use case checks it first and reports the LLM step as skipped
(rules only, template fallbacks). Calling ``complete_json`` or ``embed`` anyway is a
programming or configuration error and raises ``LLMConfigError`` (the knowledge app embeds
locally instead, with its own model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hokan.core.errors import LLMConfigError
from hokan.core.llm.client import Completion, EmbeddingResult, JsonRequest

if TYPE_CHECKING:
    from hokan.core.llm.retry import Deadline


class OfflineClient:
    """An ``LLMClient`` with ``available = False``; provider "offline", model "".

    profile: the app profile it stands in for (``profile`` / ``scope``).
    """

    provider = "offline"
    model = ""
    available = False

    def __init__(self, profile: str = "leads") -> None:
        self.profile = profile
        self.scope = profile

    def complete_json(
        self,
        request: JsonRequest,
        *,
        timeout_s: float | None = None,
        deadline: Deadline | float | None = None,
        deadline_s: float | None = None,
    ) -> Completion:
        """Never answers.

        Raises:
            LLMConfigError: always ("offline" mode: no LLM provider configured).
        """
        raise self._refusal()

    def embed(
        self,
        texts: list[str],
        *,
        model: str | None = None,
        deadline: Deadline | float | None = None,
        deadline_s: float | None = None,
    ) -> EmbeddingResult:
        """Never embeds.

        Raises:
            LLMConfigError: always.
        """
        raise self._refusal()

    def _refusal(self) -> LLMConfigError:
        return LLMConfigError(
            "offline: LLMプロバイダが設定されていないため呼び出せません"
            "(HOKAN_LLM_PROVIDER または APIキーを設定してください)",
            provider=self.provider,
        )

    def __repr__(self) -> str:
        return f"OfflineClient(profile={self.profile!r})"
