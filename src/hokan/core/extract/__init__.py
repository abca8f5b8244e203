"""Rule extractors for Japanese company profile pages (会社概要): pure, no Django.

- :func:`extract_profile` (rules.py): one page → ``{field: FieldValue}``, running the topic
  rules of identity.py, address.py, phone.py, officers.py, dates.py, figures.py and web.py
  over a page.py :class:`~hokan.core.extract.page.Page`.
- :func:`find_profile_links` (links.py): a home page → links to its 会社概要 page.
- evaluate.py scores the rules against hand-labelled pages; command.py is ``hokan extract``.
"""

from hokan.core.extract.links import find_profile_links
from hokan.core.extract.rules import FIELDS, extract_profile

__all__ = ["FIELDS", "extract_profile", "find_profile_links"]
