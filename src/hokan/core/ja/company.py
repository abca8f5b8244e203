"""Company names: expand (株)-style abbreviations, a matching key, the legal form."""

from __future__ import annotations

import re

from hokan.core.ja.text import fold

# Legal forms (法人格), longest first so 一般社団法人 wins over 社団法人. Forms per 会社法
# (株式会社・合同会社・合資会社・合名会社), 整備法 (特例有限会社), 一般法人法, 公益法人認定法,
# 特定非営利活動促進法, 中小企業等協同組合法 and the 士業 laws.
LEGAL_FORMS: tuple[str, ...] = tuple(
    sorted(
        (
            "株式会社", "有限会社", "合同会社", "合資会社", "合名会社", "相互会社",
            "一般社団法人", "一般財団法人", "公益社団法人", "公益財団法人", "社団法人", "財団法人",
            "特定非営利活動法人", "NPO法人", "医療法人社団", "医療法人財団", "医療法人",
            "社会医療法人", "社会福祉法人", "学校法人", "宗教法人", "独立行政法人",
            "地方独立行政法人", "国立大学法人", "協同組合連合会", "協同組合", "企業組合",
            "協業組合", "有限責任事業組合", "弁護士法人", "税理士法人", "司法書士法人",
            "行政書士法人", "社会保険労務士法人", "監査法人", "特許業務法人",
            "土地家屋調査士法人", "農事組合法人", "生活協同組合", "農業協同組合", "漁業協同組合",
        ),
        key=len,
        reverse=True,
    )
)  # fmt: skip
# What company_type reports for forms that are variants of a broader one.
_TYPE_OF = {
    "NPO法人": "特定非営利活動法人",
    "医療法人社団": "医療法人",
    "医療法人財団": "医療法人",
    "協同組合連合会": "協同組合",
    "生活協同組合": "協同組合",
    "農業協同組合": "協同組合",
    "漁業協同組合": "協同組合",
}
# Parenthesised abbreviations (after NFKC, ㈱ is "(株)"), per common 略称 usage
# (e.g. 全銀協 カナ略語 / 国税庁 法人番号公表サイトの表記).
ABBREVIATIONS: dict[str, str] = {
    "株": "株式会社", "有": "有限会社", "同": "合同会社", "資": "合資会社", "名": "合名会社",
    "一社": "一般社団法人", "一財": "一般財団法人", "公社": "公益社団法人", "公財": "公益財団法人",
    "社": "社団法人", "財": "財団法人", "特非": "特定非営利活動法人", "NPO": "特定非営利活動法人",
    "医": "医療法人", "福": "社会福祉法人", "学": "学校法人", "宗": "宗教法人",
    "独": "独立行政法人", "協": "協同組合", "企": "企業組合", "弁": "弁護士法人", "税": "税理士法人",
}  # fmt: skip
_ABBREVIATION = re.compile(r"\(\s*(" + "|".join(ABBREVIATIONS) + r")\s*\)")
_FORM = "|".join(re.escape(f) for f in LEGAL_FORMS)
_SPACE_AROUND_FORM = re.compile(rf"\s*({_FORM})\s*")
_KEY_DROP = re.compile(r"[\s・.\-_,/'\"’&()「」『』【】\[\]]+")
_LATIN_SUFFIX = re.compile(r"\b(?:co\.?,?\s*ltd|inc|corp(?:oration)?|llc|k\.?k|limited|company)\b\.?")


def normalize_company_name(name: str) -> str:
    """``㈱セガ`` → ``株式会社セガ``; ``ABC（有）`` → ``ABC有限会社``.

    Width-folded, (株)/(有)/(同)/(資)/(名)/(一社)… expanded in place (前株/後株 kept),
    spaces next to the legal form removed, other runs of spaces collapsed to one.
    """
    s = _ABBREVIATION.sub(lambda m: ABBREVIATIONS[m.group(1)], fold(name))
    return _SPACE_AROUND_FORM.sub(r"\1", s).strip()


def company_name_key(name: str) -> str:
    """A key for matching names: folded, lower-cased, legal forms (incl. "Co., Ltd.",
    "Inc."), spaces and punctuation (・ . - , & …) removed. ``㈱ABC・ジャパン`` → ``abcジャパン``."""
    s = re.sub(_FORM, "", normalize_company_name(name))
    s = _LATIN_SUFFIX.sub("", s.lower())
    return _KEY_DROP.sub("", s)


def company_type(name: str) -> str | None:
    """The legal form in ``name`` ("株式会社", "合同会社", "一般社団法人", "協同組合", …),
    the first one by position, or None."""
    m = re.search(_FORM, normalize_company_name(name))
    return _TYPE_OF.get(m.group(0), m.group(0)) if m else None
