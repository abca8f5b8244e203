"""Width folding and "no value" detection for Japanese text.

Pure functions, no Django. Every other module of ``hokan.core.ja`` folds its input with
:func:`fold` first, so full-width digits, ideographic spaces and dash variants never reach
their regexes.
"""

from __future__ import annotations

import re
import unicodedata

# Dashes that always mean "-" once folded (NFKC already maps U+FF0D FULLWIDTH HYPHEN-MINUS):
# U+2010 HYPHEN, U+2011 NON-BREAKING HYPHEN, U+2012 FIGURE DASH, U+2013 EN DASH,
# U+2014 EM DASH, U+2015 HORIZONTAL BAR, U+2212 MINUS SIGN, U+FE63 SMALL HYPHEN-MINUS.
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63"
_DASH_TABLE = str.maketrans({c: "-" for c in _DASHES})
# ー (U+30FC, and U+FF70 which NFKC folds into it) is a katakana long-vowel mark, so it
# becomes "-" only between digits, where it is an OCR/IME stand-in for a hyphen.
_CHOON_BETWEEN_DIGITS = re.compile(r"(?<=\d)\u30fc(?=\d)")
_SPACES = re.compile(r"\s+")


def _fold_chars(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_DASH_TABLE)
    return _CHOON_BETWEEN_DIGITS.sub("-", text)


def fold(text: str) -> str:
    """Return ``text`` NFKC-folded, with dash variants as "-" and whitespace collapsed.

    Full-width letters/digits/punctuation become ASCII, ㈱ becomes "(株)", U+3000 and
    newlines become one ASCII space, and the result is stripped.
    """
    return _SPACES.sub(" ", _fold_chars(text)).strip()


def fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """Fold ``text`` character by character without collapsing whitespace.

    Returns ``(folded, offsets)`` where ``offsets[i]`` is the index in ``text`` of the
    character that produced ``folded[i]``; used to report raw substrings of matches.
    """
    parts: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        folded = unicodedata.normalize("NFKC", ch).translate(_DASH_TABLE)
        parts.append(folded)
        offsets.extend([i] * len(folded))
    return _CHOON_BETWEEN_DIGITS.sub("-", "".join(parts)), offsets


# Answers that mean "no value". Matched against the whole folded text, after dropping
# parentheticals and trailing politeness ("です", "。"). Patterns that may follow other words
# apply only to text without digits, so "100名 詳細はお問い合わせください" keeps its value.
_VAGUE_EXACT = re.compile(
    r"(?:現在)?(?:要確認|確認中|調査中|要問い?合わ?せ|非公開|未公開|非開示|非公表|未公表|未定|不明|未記載|記載なし|"
    r"情報なし|該当なし|該当無し|特になし|なし|無し|ありません|不詳|空欄|"
    r"tbd|tba|n/?a|none|null|nil|unknown|not available|not disclosed|-+|\.+|…+|・+|ー+|\?+|\*+)",
    re.IGNORECASE,
)
_ASK = r"(?:お?問い?合わ?せ|ご確認|お尋ね)[^0-9]*(?:ください|下さい|願います)"
_VAGUE_LEADING = re.compile(rf"(?:詳細は|詳しくは).*|{_ASK}")
_VAGUE_NO_DIGITS = re.compile(
    rf".*(?:による|参照(?:ください|下さい)?|をご覧ください|{_ASK}|"
    r"ません(?:でした)?|不明|非公開|未公開|未定|記載なし|情報なし|該当なし)"
)
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】")
_TRAILING = re.compile(r"(?:です|でございます|となります|となっております)?[。.!！\s]*$")


# The means a direction to the reader names (how to apply, where to ask): with one of these,
# 「電話または窓口でお問い合わせください」 is an answer to "how do I apply?" (document 003 §3
# application_method), not a refusal to answer.
_MEANS = re.compile(
    r"窓口|電話|郵送|郵便|オンライン|電子申請|インターネット|メール|ファクス|ファックス|fax|"
    r"来庁|来所|持参|申請書|届出書|請求書|申込書|マイナンバーカード|マイナポータル|コンビニ|アプリ|予約",
    re.IGNORECASE,
)


def names_a_means(text: str) -> bool:
    """Whether ``text`` names a means of applying or asking (窓口, 電話, 郵送, オンライン, 申請書, …)."""
    return bool(_MEANS.search(fold(text)))


def is_vague(text: str | None, *, directions: bool = False) -> bool:
    """True when ``text`` is missing or says "no value" (非公開, 未定, 詳細は…, N/A, "-", …).

    Used on LLM and page answers so that 「お問い合わせください」 never becomes a value.
    directions: the value is a direction to the reader (an application method): a sentence that
        asks the reader to contact or check is then vague only when it names no means (窓口, 電話,
        郵送, オンライン, 申請書, …): 「電話または窓口でお問い合わせください」 is an answer,
        「詳細はお問い合わせください」 is not.
    """
    if text is None:
        return True
    folded = fold(text)
    if directions and folded and _MEANS.search(folded) and not _VAGUE_EXACT.fullmatch(folded.strip()):
        return False
    quotes = " 「」『』\"'"
    stripped = _TRAILING.sub("", _PARENS.sub("", folded)).strip(quotes)
    if not stripped:  # the whole answer was in brackets: judge what they hold
        stripped = _TRAILING.sub("", folded.strip(quotes + "()[]【】")).strip(quotes)
    if not stripped:
        return True
    if _VAGUE_EXACT.fullmatch(stripped) or _VAGUE_LEADING.fullmatch(stripped):
        return True
    has_digit = any(c.isdigit() for c in stripped)
    return not has_digit and bool(_VAGUE_NO_DIGITS.fullmatch(stripped))
