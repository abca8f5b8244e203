"""Row labels of Japanese company profiles (会社概要) and what they announce.

A label is first normalised by :func:`label_key` (width folding, no spaces, no decoration
such as ■【】：, no trailing parenthetical), then classified by :func:`label_kind` into one
of the kinds below. The synonym lists come from reading real 会社概要 pages (the pages in
``shared/data/company_pages`` and the common wording of 会社概要 templates); a label that is
not listed has kind ``None`` and is never used for a field.

Decisions:

- 設立 / 設立年月日 / 会社設立 / 法人設立 (incorporation) → ``established``.
- 創業 / 創立 → ``founded``. 創立 is ambiguous (some firms write 創立 for their
  incorporation, others for the start of the business before it); it is never read as
  ``established_year``, because a wrong year is worse than none.
- 代表者 / 代表 / 代表者名 → ``representative`` (value "title name" or just "name");
  a label that is itself a title (代表取締役, 代表取締役社長, 代表理事, 理事長, 社長, 会長…)
  → ``rep_title`` (value is the name, the title is the label); 役員 / 取締役 / 役員構成
  → ``officers`` (value lists "title name" lines; only a 代表/社長 line is taken).
- 本社 / 本店 / 本部 / 主たる事務所 / 〇〇本社 → ``hq_address``; 所在地 / 住所 → ``address``.
- 電話 / TEL / 代表電話 / 連絡先 / "TEL/FAX" → ``phone``; FAX alone → ``fax`` (never a phone).
- 出資金 (cooperatives) is not 資本金 and is not read as ``capital``.
- 会社概要 / 企業概要 as a row label → ``name``, used only when the value carries a legal
  form (株式会社, 合同会社…): such tables put the name in their first row.
"""

from __future__ import annotations

import functools
import re

from hokan.core.ja import fold

_DECOR = "■□●○◆◇▼▽▲△・※*＊★☆◎【】[]「」『』〈〉<>《》〔〕|｜:：;/／-_=~〜"
_TRAILING_PAREN = re.compile(r"[(（][^()（）]*[)）]$")
_SPACE = re.compile(r"\s+")

# kind → regex (full match on the label key, ASCII lower-cased).
_KINDS: tuple[tuple[str, str], ...] = (
    ("name", r"会社名|商号|社名|法人名|名称|正式名称|企業名|組合名|団体名|会社名称|法人名称|商号名|事業者名|組織名|会社概要|企業概要|販売業者|販売事業者|運営会社"),
    ("corporate_number", r"法人番号|法人番号\(13桁\)"),
    ("established", r"設立|設立年月日|設立日|設立年|設立年月|会社設立|会社設立日|会社設立年月日|法人設立|法人設立日|法人設立年月日|設立年月日\S{0,6}"),
    ("founded", r"創業|創業年|創業年月|創業年月日|創業日|創立|創立年|創立年月|創立年月日|創立日"),
    ("capital", r"資本金|資本金額|資本の額"),
    ("employees", r"従業員数|従業員|社員数|職員数|スタッフ数|従業者数|社員|スタッフ|人員|在籍人数|在籍者数|従業員数\S{0,8}|社員数\S{0,8}"),
    ("revenue", r"売上高|売上|年商|売上金額|年間売上|年間売上高|売上高\S{0,10}|売上\(\S{0,10}\)"),
    ("hq_address", r"本社|本店|本部|本社所在地|本店所在地|本部所在地|本社住所|本店住所|本社事務所|主たる事務所|主たる事務所の所在地|\S{1,6}本社|本社・\S{1,6}"),
    ("address", r"所在地|住所|事務所|事務所所在地|所在地\(本社\)|会社所在地|所在地・連絡先|住所・連絡先|主な事業所|主たる事業所|事業所所在地"),
    ("phone", r"電話|電話番号|tel|tel番号|tel\.|telephone|phone|代表電話|代表電話番号|代表番号|お電話|連絡先|電話連絡先|"
              r"tel/fax|tel\.?fax|電話/fax|電話fax|電話・fax|tel・fax|電話番号/fax番号|電話番号・fax番号|電話番号fax番号|tel番号/fax番号|"
              r"電話番号\(代表\)|tel\(代表\)|本社電話番号|本社tel"),
    ("fax", r"fax|fax番号|ファックス|ファクス|ファックス番号|ファクス番号|ファクシミリ"),
    ("email", r"e-?mail|mail|メール|メールアドレス|e-?mailアドレス|電子メール|emailaddress"),
    ("url", r"url|ホームページ|hp|公式hp|ホームページアドレス|ウェブサイト|webサイト|website|web|公式サイト|サイト"),
    ("business", r"事業内容|事業概要|業務内容|主要事業|主な事業|主な事業内容|営業種目|営業品目|営業内容|事業|事業案内|業務|主要業務|業務概要|主な業務|主な業務内容|事業領域"),
    ("representative", r"代表者|代表|代表者名|代表者氏名|代表者役職氏名|代表者役職・氏名|代表者の氏名|経営者"),
    ("rep_title", r"(?:代表取締役|代表執行役)(?:社長|会長|副社長|専務|常務)?(?:兼?(?:社長|会長|最高経営責任者|[a-z]{2,4}))?(?:[a-z]{2,4})?|"
                  r"代表理事|代表理事長|理事長|代表社員|社長|会長|ceo|院長|所長|組合長|学長|園長|代表幹事"),
    ("officers", r"役員|役員構成|役員一覧|取締役|経営陣|役員・幹部|主要役員|役員紹介|理事|理事・監事|役員等"),
    ("postal_code", r"郵便番号"),
)  # fmt: skip
_COMPILED = tuple((kind, re.compile(f"(?:{pattern})")) for kind, pattern in _KINDS)


def label_key(label: str) -> str:
    """Normalise a label for matching: fold, drop spaces and decoration, drop a trailing (…).

    ``"■代　　表"`` → ``"代表"``, ``"電話番号（代表）"`` → ``"電話番号"``, ``"TEL / FAX"`` → ``"tel/fax"``.
    Inner "/" is kept so that "TEL/FAX" stays distinguishable from "FAX".
    """
    s = _SPACE.sub("", fold(label)).lower()
    s = s.strip(_DECOR)
    prev = None
    while prev != s:
        prev = s
        stripped = _TRAILING_PAREN.sub("", s)
        # Keep "(代表)"-style keys matchable by their own pattern, strip only when the rest is a label.
        if stripped and label_kind_of_key(stripped) is not None:
            s = stripped
        s = s.strip(_DECOR)
    return s


def label_kind_of_key(key: str) -> str | None:
    """The kind of an already normalised label key, or None."""
    if not key or len(key) > 20:
        return None
    for kind, pattern in _COMPILED:
        if pattern.fullmatch(key):
            return kind
    return None


@functools.lru_cache(maxsize=8192)
def label_kind(label: str) -> str | None:
    """The kind (``name``, ``established``, ``phone``, …) of a raw label text, or None.

    Memoised (the same label texts recur on every page and in every row of a page; the
    result depends on the text alone): at most 8,192 texts are kept, least recently used out.
    """
    return label_kind_of_key(label_key(label))


# A line/label naming a branch rather than the head office.
BRANCH = re.compile(r"支店|支社|営業所|工場|店舗|事業所|出張所|営業拠点|拠点|倉庫|研究所|ショールーム|センター|オフィス|店$|教室|スタジオ|分室|サテライト")
HEAD_OFFICE = re.compile(r"本社|本店|本部|主たる事務所|head\s*office|headquarters", re.IGNORECASE)
# A line or sub-label announcing a FAX number / a telephone number ("FAX:", "F.", "TEL", "☎").
FAX = re.compile(r"fax|ファックス|ファクス|ファクシミリ|(?<![a-z])f\s*[.:]", re.IGNORECASE)
TEL = re.compile(r"tel|電話|phone|☎|℡", re.IGNORECASE)


def is_head_office(text: str) -> bool:
    """True when ``text`` (a sub-label or heading) names the head office (本社/本店/本部)."""
    return bool(HEAD_OFFICE.search(fold(text)))


def is_branch(text: str) -> bool:
    """True when ``text`` names a branch (支店, 営業所, 工場, 〇〇店…) and not the head office."""
    folded = fold(text)
    return bool(BRANCH.search(folded)) and not HEAD_OFFICE.search(folded)
