"""Representatives (代表者): split "代表取締役社長 平島 信一" into title and name."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hokan.core.ja.text import fold, is_vague

# Title words, longest first so 代表取締役 wins over 代表 and 理事長 over 理事.
_TITLE_WORDS = (
    "代表取締役", "代表執行役", "取締役", "執行役員", "執行役", "代表理事", "理事長", "副理事長",
    "理事", "代表社員", "業務執行社員", "代表役員", "代表パートナー", "代表者", "代表",
    "副社長", "社長", "副会長", "会長", "専務", "常務", "最高経営責任者", "頭取", "会頭",
    "組合長", "所長", "院長", "園長", "学長", "校長", "館長", "支配人", "店主", "店長",
    "オーナー", "塾長", "総裁", "議長", "委員長", "管理者", "主宰", "CEO", "COO", "CFO",
    "CTO", "CMO", "President", "Chairman", "Chairperson", "Founder", "Owner",
    "Managing Director", "Representative Director", "Director",
)  # fmt: skip
_TITLE_WORD = "|".join(re.escape(w) for w in sorted(_TITLE_WORDS, key=len, reverse=True))
# A run of title words joined by nothing, spaces, 兼, &, and, 「・」 or "/" (社長兼CEO).
_TITLE = rf"(?<![A-Za-z])(?:{_TITLE_WORD})(?:\s*(?:兼務?|&|and|・|/)?\s*(?:{_TITLE_WORD}))*(?![a-z])"
_TITLE_RUN = re.compile(_TITLE, re.IGNORECASE)
_TITLE_LAST = re.compile(rf"^(?P<name>.+?)\s*\(?(?P<title>{_TITLE})\)?$", re.IGNORECASE)
# Labels, not titles: "代表者：山田太郎" has no title.
_LABEL_TITLES = frozenset({"代表者", "代表者名"})
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】")
_HONORIFIC = re.compile(r"\s*(?:様|氏|さん|殿)$")
# Separators between several people: "代表取締役会長 A / 代表取締役社長 B".
_PEOPLE_SEPARATOR = re.compile(r"\s*(?:/|、|,|;|\s・\s)\s*")
_NAME_CHARS = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff々〆ヶA-Za-z.' ・]+")
_NOT_NAME_WORDS = re.compile(
    r"会社|法人|組合|協会|事務所|グループ|本社|支店|本部|事業部|センター|株式|有限|合同|"
    r"Inc|Ltd|\bCo\b|LLC|Corp|一覧|氏名|名前|代表|役員|社長|取締役|会長"
)


@dataclass(frozen=True)
class Representative:
    """title: e.g. "代表取締役社長COO", or None; name: "杉野 行雄" (one ASCII space between
    family and given name when the source had a space), or "齋藤浩輝"."""

    title: str | None
    name: str


def _clean_name(name: str) -> str | None:
    name = _HONORIFIC.sub("", name.strip(" :")).strip()
    name = re.sub(r"\s+", " ", name)
    compact = name.replace(" ", "")
    if not 2 <= len(compact) <= 12 or name.count(" ") > 2:
        return None
    if not _NAME_CHARS.fullmatch(name) or _NOT_NAME_WORDS.search(name) or is_vague(name):
        return None
    # 「・」 belongs inside katakana/Latin names (ジョン・スミス); between kanji it lists people.
    if re.search(r"[\u3400-\u9fff]・|・[\u3400-\u9fff]", name):
        return None
    return name


def _title(title: str) -> str | None:
    title = re.sub(r"\s+", " ", title.strip())
    return None if title in _LABEL_TITLES else title


def split_representative(text: str) -> Representative | None:
    """Split ``text`` into :class:`Representative`, or None when no person's name remains.

    ``代表取締役社長COO 杉野 行雄`` → ("代表取締役社長COO", "杉野 行雄");
    ``第一日本接骨師会 会長 永瀬 徹也`` → ("会長", "永瀬 徹也") (an organisation before the
    title is dropped); ``小笠原崇文`` → (None, "小笠原崇文"). Readings in parentheses and
    様/氏 are stripped. With several people ("代表取締役会長 A / 代表取締役社長 B") the first
    titled person is returned; several bare names ("山田太郎、鈴木一郎") or a name with
    digits, company words or more than 12 characters give None rather than a guess.
    """
    s = _PARENS.sub(" ", fold(text)).strip()
    if is_vague(s):
        return None
    parts = [p for p in _PEOPLE_SEPARATOR.split(s) if p.strip()]
    while len(parts) > 1 and _TITLE_RUN.fullmatch(parts[0]):  # "President/CEO 山田 太郎"
        parts[:2] = [f"{parts[0]}/{parts[1]}"]
    if not parts:
        return None
    first = parts[0]
    # The first title run followed by a clean name; text before it (an organisation) is dropped.
    for m in _TITLE_RUN.finditer(first):
        name = _clean_name(first[m.end() :])
        if name is not None:
            return Representative(_title(m.group(0)), name)
    last = _TITLE_LAST.match(first)
    if last is not None:
        name = _clean_name(last.group("name"))
        return Representative(_title(last.group("title")), name) if name else None
    if len(parts) > 1:
        return None
    name = _clean_name(first)
    return Representative(None, name) if name else None
