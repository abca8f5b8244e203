"""Errors of the estimate app, outside every flow module so that any of them can raise or catch
them without importing another (the API maps them to HTTP answers).

::

    HokanError
    ├─ InputError ─ (bad answers: ``answers.validate_step_value``, field ``step_N``) → 400
    └─ SessionNotFound(session_id) → 404

Other estimate errors live beside the code that raises them and belong to the same tree:
``adapters.LLMAttemptsExhausted``, ``pdf.PdfError``, ``mail.MailError``, ``notion.NotionError``.
"""

from __future__ import annotations

from hokan.core.errors import HokanError


class SessionNotFound(HokanError):
    """No session with this id (the API answers 404)."""

    def __init__(self, session_id: object) -> None:
        super().__init__("セッションが見つかりません")
        self.session_id = session_id
