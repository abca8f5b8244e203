"""Rule extractors for Japanese company profile pages (会社概要): pure, no Django.

- :func:`extract_profile` (rules.py): one page → ``{field: FieldValue}``, running the topic
  rules of identity.py, address.py, phone.py, officers.py, dates.py, figures.py and web.py
  over a page.py :class:`~hokan.core.extract.page.Page`.
- :func:`find_profile_links` (links.py): a home page → links to its 会社概要 page.
- merge.py chooses one value per field among several pages; llm.py reads an LLM's answer
  about fields (schema, validation, grounding, confidence).
- evaluate.py scores the rules against hand-labelled pages; command.py is ``hokan extract``.

The names below are imported on first use (PEP 562), so that importing a submodule (the
``hokan extract`` command group, when ``hokan --help`` runs) does not load every rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hokan.core.extract.links import find_profile_links
    from hokan.core.extract.rules import FIELDS, extract_profile

__all__ = ["FIELDS", "extract_profile", "find_profile_links"]

_WHERE = {"FIELDS": "rules", "extract_profile": "rules", "find_profile_links": "links"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"hokan.core.extract.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
