"""Rule extractors for municipal service pages ($0, issue 10 §2 step 5).

Whose facts: a value belongs to the office that handles the service — the one named in the
page's own contact block (このページに関する問合せ先, お問い合わせ(先), 問い合わせ先, 担当, このページの
情報発信元, 連絡先) — never to the government-wide footer (代表電話, 法人番号, 開庁時間, the city hall's
〒 and address), and a FAX number is never a phone. On a facility's own site (a centre whose
header or footer *is* the office) a 〒 line outside any footer of the government counts as the
office's block too (the labelling policy of ``service_pages/README.md`` §"How the labels were
decided" 1).

Readers and where they look:

=====================  ==========================================================================
field                  rule
=====================  ==========================================================================
department             first office-like line of the chosen block (…課, …係, …センター, …所, …局 …);
                       not an operator's legal name (公益社団法人 …), not the government itself
phone                  first number of the block (libphonenumber via ``core.ja.find_phones``) whose
                       label is not FAX and that is not marked 代表
email                  an address printed in the block (never rebuilt from "(at)" forms)
postal_code            〒 / 郵便番号 in the block → ``NNN-NNNN``
address                the rest of the 〒 line, or the next line, or an address line of the block
                       (prefecture or city + a number); a split line (…区 / 八幡山二丁目…) is joined
location               a building / floor line of the block (クマダ77ビル2F, 本庁舎1階)
office_hours           a labelled line (受付時間, 問い合わせ時間, 応答時間, 開館時間 …, never 開庁時間)
                       in the block, else in the body outside any footer; or the hours in brackets
                       after the block's phone ("TEL:052-681-2211（平日10:00～16:30）")
fee                    a line labelled 手数料 / 料金 / 使用料 / 利用料 / 費用 with an amount in 円 or 無料,
                       outside any footer; the amount as printed ("3,000円", "無料")
required_documents     the bullet items under 必要なもの / 持参するもの / 必要書類 / 持ち物
online_available       a sentence saying the service is applied for by 電子申請 / オンライン申請
=====================  ==========================================================================

Everything is matched on ``core.ja.fold`` text (NFKC, dash variants as "-"), so full-width forms
(０８６－７２４－９５１２, 〒７００) pass; ``raw`` is the substring as printed and ``quote`` the
printed line(s) it was read from (always a substring of the page text of :mod:`.text`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hokan.core import ja
from hokan.core.ja import fold, fold_with_offsets

MAX_BLOCK_LINES = 10
MAX_LINE = 120

# A contact heading: the whole (folded, space-free) line, optionally "label: value".
_HEADING = re.compile(
    r"^(?:[A-Za-z]+)?(?:.{1,24}に関する)?(?:この(?:ページ|ホームページ|記事|情報)(?:に関する|の)?)?"
    r"(?:お?問い?合わ?せ(?:先|窓口)?|ご?連絡先|担当(?:課|部署|窓口|係)?|(?:情報)?発信元|所管課?)"
    r"(?::(?P<rest>.+))?$"
)
# Lines of the government-wide footer (end a block; a 〒 near them is not the office's).
_GOV_FOOTER = re.compile(r"代表|法人番号|開庁|閉庁|ダイヤルイン")
_COPYRIGHT = re.compile(r"copyright|©|\(c\)|all rights reserved", re.IGNORECASE)
_GOVERNMENT = re.compile(r"^\S{1,6}[都道府県市区町村](?:庁|役所|役場|庁舎)?$|県庁|市役所|区役所|役場|都庁|府庁")
_OPERATOR = re.compile(r"^(?:公益|一般)?(?:社団|財団)法人|^\((?:一社|公社|一財|公財|株|有|特非)\)|^株式会社|^NPO法人|^特定非営利")
_ORG_END = re.compile(
    r"(?:課|係|室|班|センター|事務所|支所|本所|出張所|分室|局|部|所|署|協会|館|施設|事務局|委員会|グループ|担当|窓口|保健所|営業所)"
    r"(?:\s*\([^()]*\))?$"
)
_LABEL_LINE = re.compile(r"^(?:所在地|住所|電話|tel|fax|ファ[ック]?クス|メール|e-?mail|mail|url|受付|時間|開館|ページ|掲載|更新)", re.IGNORECASE)
_FAX = re.compile(r"fax|ファックス|ファクス|ファクシミリ", re.IGNORECASE)
_TEL = re.compile(r"tel|電話|☎|℡", re.IGNORECASE)
_POSTAL = re.compile(r"(?:〒|郵便番号\s*:?)\s*(\d{3})\s*-?\s*(\d{4})(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ADDRESS_START = re.compile(r"^(?:\S{2,4}?[都道府県])?\S{1,8}?(?:市|区|郡|町|村)")
_ADDRESS_NUMBER = re.compile(r"\d|丁目|番地|番|号")
_ADDRESS_LABEL = re.compile(r"^(?:所在地|住所|場所)\s*:?\s*")
_ADDRESS_TAIL = re.compile(r"\s*(?:\[[^\]]*\]|\((?:地図|map|マップ)[^)]*\))\s*$", re.IGNORECASE)
_CONTINUATION = re.compile(r"^[^\s:]{0,12}?(?:\d|[一二三四五六七八九十]+丁目)")
_BUILDING = re.compile(r"^(?:[^\s:]{0,20}(?:ビル|庁舎|会館|棟|館|センター)\s*)?(?:\d{1,2}|[一二三四五六七八九十])\s*(?:階|F)$|^[^\s:]{1,20}ビル\s*\d*\s*(?:階|F)?$", re.IGNORECASE)
_HOURS_LABEL = re.compile(
    r"(?P<label>(?:受付|問い?合わ?せ|応答|開館|開所|営業|業務|窓口|相談|電話受付|返還手続き受付)時間|受付日時)"
    r"\s*(?:\([^()]*\))?\s*:?\s*(?P<rest>.*)$"
)
_TIME = re.compile(r"\d{1,2}\s*(?:時|:)\s*\d{0,2}")
_BULLET = re.compile(r"^[・\-●○◆◇■□※*]\s*|^\d{1,2}[.)]\s*|^\(\d{1,2}\)\s*")
_HOURS_IN_BRACKETS = re.compile(r"\(([^()]*\d{1,2}\s*(?:時|:)\s*\d{0,2}[^()]*)\)")
_FEE_LABEL = re.compile(r"手数料|料金|使用料|利用料|費用|保管料|負担金|参加費|受講料")
_AMOUNT = re.compile(r"\d[\d,]*\s*円|無料")
_DOCS_HEADING = re.compile(
    r"^[【\[<(■●◆◇□]?\s*(?:必要(?:な)?(?:書類|もの|物)|持ち物|持参(?:する|して(?:いただく|頂く))?(?:もの|物|書類)|"
    r"提出(?:する)?書類|添付書類|申請に必要なもの)\s*[】\]>)]?\s*:?$"
)
_ONLINE = re.compile(r"電子申請|オンライン申請|オンラインで(?:の)?(?:申請|申し?込|手続)|インターネットで(?:の)?(?:申請|申し?込)|マイナポータル")
_APPLY = re.compile(r"申し?込|申請|手続|届出")
_NEGATION = re.compile(r"(?:でき|行え|受け付けて(?:い|お)り)ません|できない|不可|対象外|受付していません")


@dataclass(frozen=True)
class Candidate:
    """One value a rule read: ``field`` (generic, §3), ``text`` (the value as printed, folded),
    ``raw`` (the substring as printed), ``quote`` (the printed line(s)), ``extractor`` (rule
    name), ``in_block`` (read from the office's own contact block)."""

    field: str
    text: str
    raw: str
    quote: str
    extractor: str
    in_block: bool = True


@dataclass
class Block:
    """A contact block: line indices [start, end) of the page; ``heading`` says whether a contact
    heading opened it (False: a facility's 〒 line)."""

    start: int
    end: int
    heading: bool
    rest: str = ""
    found: dict[str, Candidate] = field(default_factory=dict)


# --- text helpers --------------------------------------------------------------------------------
def _key(line: str) -> str:
    return fold(line).replace(" ", "")


def _raw(line: str, folded_start: int, folded_end: int) -> str:
    """The printed substring of ``line`` that folds to ``fold_with_offsets(line)[start:end]``."""
    _, offsets = fold_with_offsets(line)
    if not offsets or folded_start >= len(offsets):
        return line
    end = offsets[min(folded_end, len(offsets)) - 1] + 1
    return line[offsets[folded_start] : end]


def printed(line: str, folded_part: str) -> str:
    """The substring of ``line`` as printed whose fold is ``folded_part`` (``folded_part`` itself
    when it is not found, e.g. across a joined line)."""
    folded, offsets = fold_with_offsets(line)
    at = folded.find(folded_part)
    if at < 0 or not folded_part:
        return folded_part
    return line[offsets[at] : offsets[at + len(folded_part) - 1] + 1]


def _folded(line: str) -> str:
    return fold_with_offsets(line)[0]


# --- blocks --------------------------------------------------------------------------------------
def is_heading(line: str) -> re.Match[str] | None:
    """The contact-heading match of a line (``rest`` = an inline value after "担当:"), or None."""
    key = _key(line)
    if len(key) > 40:
        return None
    return _HEADING.match(key)


def is_footer_line(line: str) -> bool:
    """A line of the government-wide footer (代表, 法人番号, 開庁時間, ダイヤルイン)."""
    return bool(_GOV_FOOTER.search(fold(line)))


def _block_end(lines: list[str], start: int) -> int:
    end = start
    while end < len(lines) and end - start < MAX_BLOCK_LINES:
        line = lines[end]
        folded = fold(line)
        if is_heading(line) or is_footer_line(line) or _COPYRIGHT.search(line) or len(folded) > MAX_LINE:
            break
        if len(folded) > 25 and folded.endswith(("。", "。)")):
            break  # a sentence of the body: contact blocks are lists of short lines
        end += 1
    return end


def find_blocks(lines: list[str]) -> list[Block]:
    """The contact blocks of a page in order: heading blocks first, then facility blocks (a 〒 line
    outside heading blocks and away from the government footer)."""
    blocks: list[Block] = []
    covered: set[int] = set()
    for i, line in enumerate(lines):
        match = is_heading(line)
        if not match:
            continue
        end = _block_end(lines, i + 1)
        blocks.append(Block(start=i + 1, end=end, heading=True, rest=match.group("rest") or ""))
        covered.update(range(i, end))
    for i, line in enumerate(lines):
        if i in covered or not _POSTAL.search(_folded(line)):
            continue
        window = lines[max(0, i - 4) : i + 5]
        if any(is_footer_line(w) for w in window):
            continue
        start = i
        for back in range(i - 1, max(-1, i - 4), -1):
            if _is_office(lines[back]):
                start = back
                break
        if start == i and any(_GOVERNMENT.search(_key(w)) for w in lines[max(0, i - 2) : i]):
            continue
        end = _block_end(lines, i + 1)
        blocks.append(Block(start=start, end=end, heading=False))
        covered.update(range(start, end))
    return blocks


def _is_office(line: str) -> bool:
    key = _key(line)
    if not key or len(key) > 40 or _LABEL_LINE.match(key) or ":" in key:
        return False
    if _OPERATOR.search(key) or _GOVERNMENT.fullmatch(key) or key in ("お問い合わせ", "問い合わせ"):
        return False
    if ja.find_phones(line) or _POSTAL.search(key) or "@" in key:
        return False
    if re.search(r"ください|こちら|ます|です|について", key):
        return False
    return bool(_ORG_END.search(key))


# --- readers inside a block ----------------------------------------------------------------------
def _department(lines: list[str], block: Block) -> Candidate | None:
    if block.rest and _is_office(block.rest):
        line = lines[block.start - 1]
        return Candidate("department", fold(block.rest), block.rest, line, "block:department")
    for i in range(block.start, min(block.end, block.start + 4)):
        if _is_office(lines[i]):
            return Candidate("department", fold(lines[i]), lines[i], lines[i], "block:department")
    return None


def _phone(lines: list[str], block: Block) -> Candidate | None:
    for i in range(block.start, block.end):
        line = lines[i]
        position = 0
        for phone, raw in ja.find_phones(line):
            at = line.find(raw, position)
            if at < 0:
                continue
            label = fold(line[position:at])
            after = fold(line[at + len(raw) : at + len(raw) + 10])
            position = at + len(raw)
            shared = bool(_TEL.search(label))  # "TEL/FAX: 01656-5-3019" is a phone that also takes faxes
            if (_FAX.search(label) and not shared) or (not label and i > 0 and _FAX.search(fold(lines[i - 1])[-8:])):
                continue  # "FAX: 086-…", or a number under a line that ends with its FAX label
            if "代表" in after or "代表" in label:
                continue  # the switchboard of the government, not the office
            return Candidate("phone", phone.national, raw, line, "block:phone")
    return None


def _email(lines: list[str], block: Block) -> Candidate | None:
    for i in range(block.start, block.end):
        match = _EMAIL.search(_folded(lines[i]))
        if match:
            return Candidate("email", match.group(0).lower(), _raw(lines[i], match.start(), match.end()), lines[i],
                             "block:email")
    return None


def _postal_and_address(lines: list[str], block: Block) -> list[Candidate]:
    out: list[Candidate] = []
    for i in range(block.start, block.end):
        line = lines[i]
        folded = _folded(line)
        match = _POSTAL.search(folded)
        if not match:
            continue
        code = f"{match.group(1)}-{match.group(2)}"
        out.append(Candidate("postal_code", code, _raw(line, match.start(), match.end()), line, "block:postal_code"))
        rest = folded[match.end() :].strip()
        used = [line]
        if not rest and i + 1 < block.end:
            used.append(lines[i + 1])
            rest = fold(lines[i + 1])
        address = _clean_address(rest)
        if address:
            address, used = _join_continuation(lines, block, i + len(used) - 1, address, used)
            out.append(Candidate("address", address, _printed_across(used, address), " ".join(used), "block:address"))
        return out
    for i in range(block.start, block.end):
        address = _clean_address(fold(lines[i]))
        if address and _ADDRESS_START.match(address) and _ADDRESS_NUMBER.search(address):
            address, used = _join_continuation(lines, block, i, address, [lines[i]])
            out.append(Candidate("address", address, _printed_across(used, address), " ".join(used), "block:address"))
            break
    return out


def _printed_across(used: list[str], folded_part: str) -> str:
    """``folded_part`` as printed in the lines ``used`` (joined without a space where the fold
    joined them, with one where it put a space)."""
    joined = " ".join(used)
    found = printed(joined, folded_part)
    if found != folded_part or len(used) == 1:
        return found
    return printed("".join(used), folded_part)


def _clean_address(text: str) -> str:
    text = _ADDRESS_TAIL.sub("", _ADDRESS_LABEL.sub("", _BULLET.sub("", text.strip())))
    text = re.split(r"\s*(?:tel|fax|電話|☎|℡)\s*[.:]?\s*\d", text, maxsplit=1, flags=re.IGNORECASE)[0].strip()
    if not text or not _ADDRESS_START.match(text) or "@" in text or "http" in text.lower():
        return ""
    if ":" in text or ja.find_phones(text) or re.search(r"役場|役所|庁舎\s|課|係|室\b", text):
        return ""  # "音威子府村役場 経済課 産業振興室: 01656-5-3313" names an office, not where it is
    return text


def _join_continuation(lines: list[str], block: Block, last: int, address: str, used: list[str]) -> tuple[str, list[str]]:
    """Join a line broken after the city (東京都世田谷区 / 八幡山二丁目9番地11号) and a building line."""
    nxt = last + 1
    if nxt < block.end and not _ADDRESS_NUMBER.search(address) and _CONTINUATION.match(fold(lines[nxt])):
        if not (_LABEL_LINE.match(_key(lines[nxt])) or ja.find_phones(lines[nxt])):
            address = f"{address}{fold(lines[nxt])}"
            used = [*used, lines[nxt]]
            nxt += 1
    if nxt < block.end and _BUILDING.match(_key(lines[nxt])):
        address = f"{address} {fold(lines[nxt])}"
        used = [*used, lines[nxt]]
    return address, used


def _location(lines: list[str], block: Block) -> Candidate | None:
    for i in range(block.start, block.end):
        key = _key(lines[i])
        if _BUILDING.match(key):
            return Candidate("location", fold(lines[i]), lines[i], lines[i], "block:location")
    return None


def _hours_in_lines(lines: list[str], indices: range, *, in_block: bool) -> Candidate | None:
    for i in indices:
        line = lines[i]
        folded = fold(line)
        match = _HOURS_LABEL.search(folded)
        if not match or "開庁" in folded or is_footer_line(line):
            continue
        rest = match.group("rest").strip()
        quote, source = line, line
        if not rest and i + 1 < len(lines):
            rest = fold(lines[i + 1])
            quote, source = f"{line} {lines[i + 1]}", lines[i + 1]
        rest = _BULLET.sub("", rest).strip()
        if rest and _TIME.search(rest) and len(rest) <= 80:
            return Candidate("office_hours", rest, printed(source, rest), quote, "hours:label", in_block=in_block)
    return None


def _hours_after_phone(lines: list[str], block: Block) -> Candidate | None:
    for i in range(block.start, block.end):
        line = lines[i]
        if not ja.find_phones(line) or _FAX.match(_key(line)):
            continue
        match = _HOURS_IN_BRACKETS.search(fold(line))
        if match:
            hours = match.group(1).strip()
            return Candidate("office_hours", hours, printed(line, hours), line, "hours:phone")
    return None


# --- readers over the whole page -----------------------------------------------------------------
def _footer_lines(lines: list[str]) -> set[int]:
    """Indices within 4 lines of a government-footer line (代表, 法人番号, 開庁時間)."""
    near: set[int] = set()
    for i, line in enumerate(lines):
        if is_footer_line(line):
            near.update(range(max(0, i - 4), min(len(lines), i + 5)))
    return near


def _fee(lines: list[str], skip: set[int]) -> Candidate | None:
    for i, line in enumerate(lines):
        if i in skip:
            continue
        folded = _folded(line)
        label = _FEE_LABEL.search(folded)
        if not label or len(folded) > MAX_LINE:
            continue
        amount = _AMOUNT.search(folded, label.end()) or (_AMOUNT.search(folded) if "無料" in folded else None)
        if not amount:
            continue
        raw = _raw(line, amount.start(), amount.end())
        return Candidate("fee", fold(raw), raw, line, "fee:label", in_block=False)
    return None


def _required_documents(lines: list[str], skip: set[int]) -> Candidate | None:
    for i, line in enumerate(lines):
        if i in skip or not _DOCS_HEADING.match(_key(line)):
            continue
        items: list[str] = []
        used: list[str] = []
        for j in range(i + 1, min(len(lines), i + 9)):
            if not _BULLET.match(lines[j].strip()):
                break
            item = _BULLET.sub("", fold(lines[j])).strip()
            items.append(printed(lines[j], item))
            used.append(lines[j])
        if items:
            return Candidate("required_documents", fold("、".join(items)), "、".join(items), " ".join(used),
                             "documents:list", in_block=False)
    return None


def _online(lines: list[str], skip: set[int]) -> Candidate | None:
    for i, line in enumerate(lines):
        folded = fold(line)
        if i in skip or len(folded) < 12 or len(folded) > MAX_LINE:
            continue
        if _ONLINE.search(folded) and _APPLY.search(folded) and not _NEGATION.search(folded):
            if "http" in folded.lower() and len(folded) < 40:
                continue
            return Candidate("online_available", "true", line, line, "online:sentence", in_block=False)
    return None


# --- the page -------------------------------------------------------------------------------------
_IDENTIFYING = ("department", "phone", "email", "postal_code", "address")
BLOCK_FIELDS = ("department", "phone", "email", "postal_code", "address", "location", "office_hours")
RULE_FIELDS = (*BLOCK_FIELDS, "fee", "required_documents", "online_available")


def _first_office_only(lines: list[str], block: Block) -> Block:
    """``block`` cut before a second office (高知県中央… then 高知県中村…; 木遊館 then 総務課): an
    office line that comes after a line with a phone, a 〒 or an address of the first one."""
    seen_office = bool(block.rest and _is_office(block.rest))
    seen_value = False
    for i in range(block.start, block.end):
        line = lines[i]
        if _is_office(line):
            if seen_office and seen_value:
                return Block(start=block.start, end=i, heading=block.heading, rest=block.rest)
            seen_office = True
        elif ja.find_phones(line) or _POSTAL.search(_folded(line)) or _clean_address(fold(line)):
            seen_value = True
    return block


def read_block(lines: list[str], block: Block) -> dict[str, Candidate]:
    """Every block field this block states (see the module docstring), for its first office only."""
    block = _first_office_only(lines, block)
    found: dict[str, Candidate] = {}
    for candidate in (
        _department(lines, block),
        _phone(lines, block),
        _email(lines, block),
        *_postal_and_address(lines, block),
        _location(lines, block),
        _hours_in_lines(lines, range(block.start, block.end), in_block=True) or _hours_after_phone(lines, block),
    ):
        if candidate is not None and candidate.field not in found:
            found[candidate.field] = candidate
    return found


def extract_rules(lines: list[str]) -> dict[str, Candidate]:
    """The rule values of one page (its visible lines): ``{field: Candidate}`` for the fields of
    ``RULE_FIELDS`` the page states. The block fields all come from ONE block — among the blocks
    whose office is identified by a phone, 〒, address or e-mail, the first of those stating the
    most of department/phone/e-mail/〒/address (a heading block counting two fields more than a
    facility's 〒 line: the page's own contact heading is the better witness) — so that a department and a phone of two different offices are never mixed."""
    found: dict[str, Candidate] = {}
    best = 0.0
    for block in find_blocks(lines):
        values = read_block(lines, block)
        if not any(name in values for name in ("phone", "postal_code", "address", "email")):
            continue
        weight = sum(name in values for name in _IDENTIFYING) + (2.0 if block.heading else 0.0)
        if weight > best:  # the first of the most complete blocks
            found, best = dict(values), weight
    skip = _footer_lines(lines)
    if "office_hours" not in found:
        hours = _hours_in_lines(lines, range(len(lines)), in_block=False)
        if hours is not None and not any(i in skip for i, line in enumerate(lines) if line == hours.quote):
            found["office_hours"] = hours
    for candidate in (_fee(lines, skip), _required_documents(lines, skip), _online(lines, skip)):
        if candidate is not None:
            found[candidate.field] = candidate
    return found
