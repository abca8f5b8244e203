"""The representative: ``representative_name`` and ``representative_title``.

Candidates come from 代表者 rows ("代表取締役社長 山田 太郎" or just the name), rows whose
label is itself a title (代表取締役: 山田 太郎) and 役員 rows (only lines with 代表/社長).
The best is chosen by row kind (代表者 > title row > 役員), then by title — a title with 代表
and 社長 beats 代表 (or 社長, 理事長, CEO) alone, which beats 会長 — then page order. A rival of
the same rank naming someone else lowers the confidence ×0.8. Text lines (項目：値, often
footers) count only when no row names anyone. A "name" that is the company's own name
("代表者: munico" on munico's page) or a heading word (代表挨拶) is no one.
"""

from __future__ import annotations

import re

from hokan.core.extract.page import Found, Page, pair_confidence
from hokan.core.extract.pairs import Pair
from hokan.core.ja import company_name_key, fold, split_representative

# Words that follow 代表 in headings and menus (代表挨拶, 代表メッセージ) and are no one's name.
_NOT_A_NAME = re.compile(
    r"挨拶|あいさつ|メッセージ|紹介|プロフィール|略歴|経歴|理念|方針|番号|電話|氏名|名前|写真|ブログ|コラム|インタビュー|"
    r"対談|就任|より|から|について|取締役|役員|者"
)


def _title_score(title: str | None) -> float:
    if not title:
        return 1.0
    t = fold(title)
    if "代表" in t and "社長" in t:
        return 3.0
    if "代表" in t or "社長" in t or "理事長" in t or t.upper().startswith("CEO"):
        return 2.0
    if "会長" in t:
        return 1.5
    return 0.0


def _person(text: str, company_key: str = ""):
    rep = split_representative(text)
    if rep is None or _NOT_A_NAME.search(rep.name):
        return None
    key = company_name_key(rep.name)
    if company_key and key and key in company_key:
        return None  # "代表者: munico" on munico's page names the company, not a person
    return rep


def read_representative(page: Page) -> None:
    """Keep ``representative_name`` and, when known, ``representative_title`` (see module doc).

    Runs after identity.py's :func:`read_name` (the company's name is not a person's).
    """
    # (group priority, title score, -order) → best; group: 代表者 rows 3, title rows 2, 役員 rows 1.
    company_key = company_name_key(str(page.found["name"].value)) if "name" in page.found else ""
    entries: list[tuple[tuple[float, float, int], str | None, str, str, Pair]] = []
    for pair in page.own_pairs():
        if pair.kind == "representative":
            for i, line in enumerate(pair.lines):
                rep = _person(line, company_key)
                if rep:
                    key = (3, _title_score(rep.title), -(pair.order * 100 + i))
                    entries.append((key, rep.title, rep.name, line, pair))
        elif pair.kind == "rep_title" and pair.lines:
            line = pair.lines[0]
            rep = _person(f"{pair.label} {line}", company_key)
            if rep and fold(rep.name).replace(" ", "") in fold(line).replace(" ", ""):
                title = rep.title or fold(pair.label)
                entries.append(((2, _title_score(title), -pair.order * 100), title, rep.name, line, pair))
        elif pair.kind == "officers":
            for i, line in enumerate(pair.lines):
                rep = _person(line, company_key)
                if rep and rep.title and _title_score(rep.title) >= 2:
                    key = (1, _title_score(rep.title), -(pair.order * 100 + i))
                    entries.append((key, rep.title, rep.name, line, pair))
    if not entries:
        return
    # Text pairs (項目：値 lines, often footers) only when no row names a representative.
    structured = [e for e in entries if e[4].source != "text"]
    entries = structured or entries
    entries.sort(key=lambda e: e[0], reverse=True)
    best = entries[0]
    rivals = [e for e in entries[1:] if e[0][:2] == best[0][:2] and e[2].replace(" ", "") != best[2].replace(" ", "")]
    factor = 0.8 if rivals else 1.0
    _, title, name, line, pair = best
    confidence = pair_confidence(pair) * factor
    quote = page.pair_quote(pair, line)
    page.keep("representative_name", Found(name, line, quote, confidence, pair.source))
    if title:
        page.keep("representative_title", Found(title, line, quote, confidence, pair.source))
