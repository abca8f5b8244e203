"""Find and mask personal data (個人情報) in Japanese and English free text. Pure, no Django.

Nothing personal may reach an LLM (design document 004 §4.1; the founders' security rule).
``mask_pii(text)`` replaces every span :func:`find_pii` reports with one token per kind:

=================  ================  ==============================================================
kind               token             what is found
=================  ================  ==============================================================
``email``          ``[EMAIL]``       ``a@b.jp``, full-width ``ａ＠ｂ．ｊｐ``, ``a[at]b.jp``, ``a(at)b.jp``,
                                     ``a アットマーク b.jp``, ``a at b dot jp``
``url``            ``[URL]``         with a scheme (IDN hosts included), ``www.…``, and bare host
                                     names with a path or a common TLD (``example.co.jp/contact``)
``card``           ``[CARD]``        13–19 digits passing the Luhn check (ISO/IEC 7812-1 Annex B),
                                     or 14–16 grouped digits after カード / card
``my_number``      ``[MY_NUMBER]``   12 digits with a valid 個人番号 check digit (行政手続における
                                     特定の個人を識別するための番号の利用等に関する法律施行令 第8条),
                                     grouped 4-4-4, or after マイナンバー / 個人番号
``bank_account``   ``[BANK_ACCOUNT]``  普通 / 当座 / 貯蓄 + 6–8 digits, 口座番号 …, ゆうちょ 記号・番号
``phone``          ``[PHONE]``       Japanese fixed, mobile, 0120/0800, 050 and +81 forms whose digits
                                     form a valid national length
``address``        ``[ADDRESS]``     a street address: (〒 postal code) (prefecture) city/ward/town
                                     and a block number (1-2-3, 1丁目2番3号, 三丁目), building name
``name``           ``[NAME]``        a name before 様 / さん / 殿 / 氏 / くん / ちゃん, after 氏名 / 担当者 /
                                     お名前 labels, or before と申します
=================  ================  ==============================================================

Matching runs on a width-folded copy of the text whose characters map one to one onto the
original (NFKC per character where it yields one character), so offsets are shared and the
text outside the masked spans is returned unchanged. Kinds with more digits are matched first
(a card number is never reported as a phone number).

A wrong mask costs less than a leak, but ordinary business text must stay readable: amounts,
dates, counts, years, IDs, postal codes on their own, and regions without a block number
(東京都千代田区) are kept.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from hokan.core.ja.address import PREFECTURES

TOKENS: dict[str, str] = {
    "email": "[EMAIL]",
    "url": "[URL]",
    "bank_account": "[BANK_ACCOUNT]",
    "card": "[CARD]",
    "my_number": "[MY_NUMBER]",
    "phone": "[PHONE]",
    "address": "[ADDRESS]",
    "name": "[NAME]",
}
KINDS: tuple[str, ...] = tuple(TOKENS)

_EXTRA_FOLD = str.maketrans({
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "﹣": "-", "ｰ": "-",
})


def _fold_one_to_one(text: str) -> str:
    """NFKC per character where the result is one character; offsets stay those of ``text``."""
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch)
        out.append(folded if len(folded) == 1 else ch)
    folded_text = "".join(out).translate(_EXTRA_FOLD)
    # ー between digits is an IME stand-in for a hyphen (０９０ー１２３４ー５６７８).
    return re.sub(r"(?<=\d)ー(?=\d)", "-", folded_text)


@dataclass(frozen=True)
class PiiSpan:
    """One personal datum found: ``text[start:end]`` is of ``kind`` (one of :data:`KINDS`)."""

    kind: str
    start: int
    end: int


# --- e-mail ---------------------------------------------------------------------------------
_AT = (r"(?:\s*@\s*|\s*[\[(<{【〔]\s*(?:at|アット|あっと|アットマーク)\s*[\])>}】〕]\s*|\s+at\s+|"
       r"\s*(?:アットマーク|あっとまーく)\s*|\s*★\s*|\s*☆\s*)")
_DOT = r"(?:\.|\s*[\[(<{【〔]\s*(?:dot|ドット)\s*[\])>}】〕]\s*|\s+dot\s+|\s*ドット\s*)"
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*" + _AT
    + r"[A-Za-z0-9][A-Za-z0-9\-]*(?:" + _DOT + r"[A-Za-z0-9\-]+)*" + _DOT + r"[A-Za-z]{2,}(?![A-Za-z0-9])",
    re.IGNORECASE,
)

# --- URL --------------------------------------------------------------------------------------
_URL_CHARS = r"[^\s<>\"'「」『』()（）\[\]【】、。，,]"
_TLDS = (r"(?:jp|com|net|org|info|biz|io|co|me|ai|app|dev|xyz|tokyo|osaka|nagoya|kyoto|shop|site|online|"
         r"tech|cloud|inc|us|uk|de|fr|cn|kr|tw|hk|sg|au|ca|eu|asia|jobs|blog|page|link|work|ne|or|ac|go|lg|"
         r"ed|gr|ad|コム|みんな|日本|ストア)")
_SCHEME_URL = re.compile(r"(?:https?|ftp)://" + _URL_CHARS + r"+", re.IGNORECASE)
_WWW_URL = re.compile(r"(?<![A-Za-z0-9.\-])www\." + _URL_CHARS + r"+", re.IGNORECASE)
_ASCII_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
# Bare host names: TLD in lower case only, so "ASP.NET" or "Vue.JS" stay.
_BARE_URL = re.compile(
    r"(?<![A-Za-z0-9.\-@/])" + _ASCII_LABEL + r"(?:\." + _ASCII_LABEL + r")*\." + _TLDS
    + r"(?![A-Za-z0-9\-])(?:[:/]" + _URL_CHARS + r"*)?"
)
_IDN_URL = re.compile(r"[\u3040-\u30ff\u3400-\u9fff々ー\-]{1,30}\.(?:jp|com|net|org|コム|みんな|日本)"
                      r"(?![A-Za-z0-9\-])(?:/" + _URL_CHARS + r"*)?")
_IDN_STOP = set("はのをがにでとへもや、。「『（ :：")

# --- numbers with check digits ----------------------------------------------------------------
_DIGIT_RUN = re.compile(r"(?<![\d\-])\d(?:[ \-]?\d){11,18}(?![\d])(?!-\d)")
_CARD_LABEL = re.compile(r"(?:カード|card|クレジット|credit|visa|master|jcb|amex|ダイナース)", re.IGNORECASE)
_MY_NUMBER_LABEL = re.compile(r"(?:マイナンバー|個人番号|my\s*number)", re.IGNORECASE)
_PRODUCT_CODE = re.compile(r"(?:JAN|EAN|ISBN|GTIN|商品コード|バーコード|品番|型番|法人番号|インボイス|登録番号)", re.IGNORECASE)
_ID_LABEL = re.compile(r"(?:ID|No\.?|番号|注文|伝票|品番|型番|JAN|法人番号|会員|管理|受付|シリアル)\s*[:：]?\s*$",
                       re.IGNORECASE)


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn check (ISO/IEC 7812-1 Annex B)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def my_number_valid(digits: str) -> bool:
    """True for a 12-digit 個人番号 whose last digit is its check digit.

    Rule (施行令 第8条): with P(n) the n-th digit from the right of the first 11 digits and
    Q(n) = n + 1 for n ≤ 6, n − 5 for n ≥ 7, r = Σ P(n)·Q(n) mod 11; the check digit is 0 when
    r ≤ 1, else 11 − r.
    """
    if len(digits) != 12 or not digits.isdigit():
        return False
    body = digits[:11]
    total = 0
    for n in range(1, 12):
        p = int(body[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    r = total % 11
    check = 0 if r <= 1 else 11 - r
    return check == int(digits[11])


# --- bank accounts ----------------------------------------------------------------------------
_BANK_RE = re.compile(
    r"(?:[^\s、。,]{1,12}(?:銀行|信金|信用金庫|信組|労金|農協|JA)\s*)?(?:[^\s、。,]{1,10}支店\s*)?"
    r"(?:"
    r"(?:普通|当座|貯蓄)(?:預金)?\s*(?:口座)?\s*(?:番号)?\s*[:：]?\s*(?:No\.?\s*)?\d{6,8}(?!\d)"
    r"|口座(?:番号)?\s*(?:は|:|：)?\s*(?:No\.?\s*)?\d{6,8}(?!\d)"
    r"|記号\s*[:：]?\s*\d{5}\s*[-・、,/ ]?\s*番号\s*[:：]?\s*\d{6,8}(?!\d)"
    r"|記号\s*[・･/]?\s*番号\s*(?:は|:|：)?\s*\d{5}\s*[- ]?\s*\d{6,8}(?!\d)"
    r"|ゆうちょ[^\d]{0,10}\d{5}\s*-\s*\d{6,8}(?!\d)"
    r")"
)

# --- phones ------------------------------------------------------------------------------------
_SEP = r"[\-\s.]?"
_PHONE_RE = re.compile(
    r"(?<![\d+])(?:"
    r"\+81" + _SEP + r"(?:\(0\))?" + _SEP + r"\d{1,4}" + _SEP + r"\d{1,4}" + _SEP + r"\d{3,4}"
    r"|"
    r"\(?0\d{1,4}\)?" + _SEP + r"\(?\d{1,4}\)?" + _SEP + r"\d{3,4}"
    r")(?!\d)"
)
_ELEVEN_DIGIT_PREFIXES = ("070", "080", "090", "050", "0800")


def _valid_phone_digits(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    if match.startswith("+"):
        digits = digits[2:]
        digits = digits if digits.startswith("0") else "0" + digits
    if not digits.startswith("0") or digits.startswith("00"):
        return False
    if len(digits) == 11:
        return digits.startswith(_ELEVEN_DIGIT_PREFIXES)
    return len(digits) == 10


# --- addresses ---------------------------------------------------------------------------------
_PREF = "|".join(PREFECTURES) + r"|東京|大阪|京都"
_KANJI_NUM = r"[一二三四五六七八九十]+"
_BLOCK = (r"(?:\d+|" + _KANJI_NUM + r")\s*(?:丁目|番地|番|号|-|の)(?:\s*\d+\s*(?:番地|番|号|-|の)?)*")
_COUNTER_AFTER = r"(?!\s*(?:店|件|人|名|社|か所|ヶ所|箇所|個|台|%|％|年|月|日|時|分|割|倍|万|千|円|階建|拠点|部署|種類|回|点))"
_BUILDING = r"(?:\s?[^\s、。,]{0,20}?(?:ビル|マンション|ハイツ|コーポ|レジデンス|タワー|荘|棟)(?:\s?\d+\s*(?:階|F|号室))?|\s?\d+\s*(?:階|F|号室))?"
_COUNTER_RE = re.compile(r"[\d\-]*\s*(?:店|件|人|名|社|か所|ヶ所|箇所|個|台|%|％|年|月|日|時|分|割|倍|万|千|円|階建|拠点|部署|種類|回|点)")
_ADDRESS_RE = re.compile(
    r"(?:〒\s*\d{3}-?\d{4}\s*)?"
    r"(?:(?:" + _PREF + r")\s*)?"
    r"[^\s\d、。,()「」:：]{1,8}?[市区郡町村]"
    r"(?:[^\s\d、。,()「」:：でにはをがとへも]|\d+(?:条|線|丁(?!目)|地割))*?"
    + _BLOCK + r"(?:\d+)?" + _COUNTER_AFTER + _BUILDING
)

# --- names -------------------------------------------------------------------------------------
_KANJI = r"[\u3400-\u9fff\uf900-\ufaff々〆ヶ]"
_KATA = r"[\u30a1-\u30fa\u30fcー]"
_HONORIFIC_RE = re.compile(
    r"(?P<name>" + _KANJI + r"{1,8}(?:[ 　]" + _KANJI + r"{1,4})?|" + _KATA + r"{2,10}(?:[ 　・]" + _KATA + r"{2,10})?)"
    r"(?:様|さま|さん|殿|氏|くん|君|ちゃん)"
)
_NOT_NAMES = frozenset(
    "皆 皆々 お客 客 各位 担当 担当者 ご担当者 御社 貴社 弊社 社員 会員 利用者 先方 取引先 業者 店長 部長 課長 社長 係長 "
    "主任 上長 上司 奥 子 母 父 兄 姉 弟 妹 孫 嫁 婿 王 神 仏 殿 お疲れ 皆さま ユーザー ユーザ メンバー ゲスト スタッフ "
    "オーナー ドライバー クライアント パートナー お客さま 顧客 患者 生徒 学生 医師 先生 職人 大工 作家 店員 住民 市民 "
    "家族 親御 親 相手 女 男 外部 一般 新規 既存 常連 得意先 仕入先 委託先 営業 事務 経理 総務 人事 現場 本部 支店 "
    "得意 お得意 代理店 販売店 加盟店 各社 各店 各 全員 管理者 責任者 購入者 申込者 契約者 来場者 参加者 発注者 受注者".split()
)
_NAME_PREFIX_CUT = re.compile(r"^.*(?:部|課|社|店|所|局|室|係|科|校|院|会|組|班)(?=.)")
_LABELLED_NAME_RE = re.compile(
    r"(?:氏名|お名前|名前|担当者名?|ご担当者?|代表者名?|申込者名?|契約者名?|名義人?|口座名義)\s*(?:は|:|：)\s*"
    r"(?P<name>" + _KANJI + r"{1,5}(?:[ 　]" + _KANJI + r"{1,5})?|" + _KATA + r"{2,10}(?:[ 　・]" + _KATA + r"{2,10})?)"
)
_INTRO_NAME_RE = re.compile(r"(?P<name>" + _KANJI + r"{2,5}|" + _KATA + r"{2,10})(?:と申します|と申す者|といいます|と言います)")


def _email_spans(folded: str) -> list[tuple[int, int]]:
    return [m.span() for m in _EMAIL_RE.finditer(folded)]


def _url_spans(folded: str) -> list[tuple[int, int]]:
    spans = [m.span() for m in _SCHEME_URL.finditer(folded)]
    spans += [m.span() for m in _WWW_URL.finditer(folded)]
    spans += [m.span() for m in _BARE_URL.finditer(folded)]
    for m in _IDN_URL.finditer(folded):
        start, end = m.span()
        host = folded[start:end]
        cut = max((i for i, ch in enumerate(host.split(".")[0]) if ch in _IDN_STOP), default=-1)
        start += cut + 1
        if start < end and not folded[start].startswith("."):
            spans.append((start, end))
    return [(s, _strip_trailing_punct(folded, s, e)) for s, e in spans]


def _strip_trailing_punct(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in ".,;:!?)]}'\"":
        end -= 1
    return end


def _digit_spans(folded: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    cards: list[tuple[int, int]] = []
    numbers: list[tuple[int, int]] = []
    for m in _DIGIT_RUN.finditer(folded):
        raw = m.group(0)
        digits = re.sub(r"\D", "", raw)
        before = folded[max(0, m.start() - 20):m.start()]
        grouped = bool(re.search(r"[ \-]", raw))
        after = folded[m.end():m.end() + 8]
        product_code = bool(_PRODUCT_CODE.search(before) or _PRODUCT_CODE.search(after))
        if product_code and not _CARD_LABEL.search(before):
            continue
        card_labelled = bool(_CARD_LABEL.search(before))
        if 13 <= len(digits) <= 19 and ((luhn_valid(digits) and (len(digits) > 13 or card_labelled))
                                        or (card_labelled and 14 <= len(digits) <= 16)):
            cards.append(m.span())
        elif len(digits) == 12:
            labelled = bool(_MY_NUMBER_LABEL.search(before))
            four_four_four = bool(re.fullmatch(r"\d{4}[ \-]\d{4}[ \-]\d{4}", raw))
            if labelled or four_four_four or (my_number_valid(digits) and not _ID_LABEL.search(before)):
                numbers.append(m.span())
        elif 13 <= len(digits) <= 16 and grouped and _CARD_LABEL.search(before):
            cards.append(m.span())
    return cards, numbers


def _phone_spans(folded: str) -> list[tuple[int, int]]:
    return [m.span() for m in _PHONE_RE.finditer(folded) if _valid_phone_digits(m.group(0))]


def _address_spans(folded: str) -> list[tuple[int, int]]:
    spans = []
    for m in _ADDRESS_RE.finditer(folded):
        start, end = m.span()
        if folded[end - 1] in "0123456789-" and _COUNTER_RE.match(folded, end) and not re.match(r"\s*(?:階|F|号室)", folded[end:]):
            continue  # 「2-3店」「1-2人」: a count, not a block number
        # Trim a leading word glued to the place name (「本社は東京都…」 matches from 東京都).
        for pref in PREFECTURES:
            idx = folded.find(pref, start, end)
            if idx > start:
                start = idx
                break
        while end > start and folded[end - 1] in "-の ":
            end -= 1
        spans.append((start, end))
    return spans


def _name_spans(folded: str) -> list[tuple[int, int]]:
    spans = []
    for m in _HONORIFIC_RE.finditer(folded):
        name = m.group("name")
        start = m.start("name")
        if name in _NOT_NAMES or name.lstrip("お御ご") in _NOT_NAMES:
            continue
        cut = _NAME_PREFIX_CUT.match(name)
        if cut:
            start += cut.end()
            name = name[cut.end():]
        stripped = name.lstrip("お御ご")
        if not name or name in _NOT_NAMES or stripped in _NOT_NAMES or name.endswith(tuple(_NOT_NAMES)) and len(name) <= 3:
            continue
        if any(name.endswith(w) for w in ("担当者", "担当", "利用者", "ユーザー", "会員", "顧客", "お客")):
            continue
        spans.append((start, m.end()))
    for pattern in (_LABELLED_NAME_RE, _INTRO_NAME_RE):
        for m in pattern.finditer(folded):
            if m.group("name") not in _NOT_NAMES:
                spans.append(m.span("name"))
    return spans


def _bank_spans(folded: str) -> list[tuple[int, int]]:
    return [m.span() for m in _BANK_RE.finditer(folded)]


def find_pii(text: str) -> list[PiiSpan]:
    """Every personal datum in ``text``, as non-overlapping spans in text order.

    Detectors run in the order of :data:`KINDS`; a span overlapping one found earlier is
    dropped, so an e-mail is never also a URL and a card number never a phone number.
    """
    folded = _fold_one_to_one(text)
    taken: list[PiiSpan] = []

    def add(kind: str, spans: list[tuple[int, int]]) -> None:
        for start, end in spans:
            if end <= start:
                continue
            if any(start < t.end and t.start < end for t in taken):
                continue
            taken.append(PiiSpan(kind, start, end))

    add("email", _email_spans(folded))
    add("url", _url_spans(folded))
    add("bank_account", _bank_spans(folded))
    cards, numbers = _digit_spans(folded)
    add("card", cards)
    add("my_number", numbers)
    add("phone", _phone_spans(folded))
    add("address", _address_spans(folded))
    add("name", _name_spans(folded))
    return sorted(taken, key=lambda s: s.start)


def mask_pii(text: str, *, kinds: frozenset[str] | None = None) -> str:
    """``text`` with every personal datum replaced by its kind's token (see :data:`TOKENS`).

    kinds: restrict masking to these kinds (default: all of :data:`KINDS`).
    """
    if not text:
        return text
    out: list[str] = []
    last = 0
    for span in find_pii(text):
        if kinds is not None and span.kind not in kinds:
            continue
        out.append(text[last:span.start])
        out.append(TOKENS[span.kind])
        last = span.end
    out.append(text[last:])
    return "".join(out)
