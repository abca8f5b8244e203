"""Input sanitising before anything reaches an LLM (design document 004 §4). Pure, no Django.

``sanitize(answers, step_8_categories=None) -> dict`` (the ``user_input`` of §2.2):

1. keys ``"1"``…``"13"`` become ``step_1``…``step_13`` (``normalise_answers``);
2. keys ``email``, ``phone``, ``company_name``, ``user_name``, ``address`` and ``step_13``
   are dropped entirely (§4.1);
3. in every remaining free text, e-mail addresses, phone numbers and URLs become
   ``[EMAIL]``, ``[PHONE]`` and ``[URL]`` (§4.1);
4. in ``step_4`` and ``step_12``, each sentence that attempts a prompt injection (role change,
   ignore-instructions, prompt leak, JSON-output override; Japanese and English) becomes
   ``[FILTERED]`` (§4.2);
5. the ``step_8_categories`` saved by the first AI call is merged in.

Phone numbers are Japanese: fixed (03-1234-5678, (03)1234-5678), mobile (090…), 0120 / 0800,
050, +81 forms, full-width digits and hyphen variants. A match is masked only when its digits
form a valid national length (10 digits, or 11 for 070/080/090/050/0800), so amounts, user
counts and years stay.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from hokan.estimate.pricing import feature_values, normalise_step3

PII_KEYS = frozenset({"email", "phone", "company_name", "user_name", "address", "step_13"})
INJECTION_FIELDS = ("step_4", "step_12")
FILTERED = "[FILTERED]"

# One character in, one character out: offsets in the folded text equal those in the original.
_FOLD = str.maketrans(
    {
        **{chr(0xFF10 + i): str(i) for i in range(10)},
        **{chr(0xFF21 + i): chr(0x41 + i) for i in range(26)},
        **{chr(0xFF41 + i): chr(0x61 + i) for i in range(26)},
        "＿": "_",
        "＋": "+", "（": "(", "）": ")", "－": "-", "‐": "-", "‑": "-", "–": "-", "—": "-", "―": "-",
        "ー": "-", "ｰ": "-", "−": "-", "＠": "@", "．": ".", "　": " ",
    }
)

_URL_RE = re.compile(r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.IGNORECASE)
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_SEP = r"[\-\s.]?"
_PHONE_RE = re.compile(
    r"(?<![\d+])(?:"
    # +81 forms: +81 3 1234 5678, +81-90-1234-5678, +81(0)3-1234-5678
    r"\+81" + _SEP + r"(?:\(0\))?" + _SEP + r"\d{1,4}" + _SEP + r"\d{1,4}" + _SEP + r"\d{3,4}"
    r"|"
    # domestic forms: 03-1234-5678, (03)1234-5678, 03(1234)5678, 0120-123-456, 09012345678
    r"\(?0\d{1,4}\)?" + _SEP + r"\(?\d{1,4}\)?" + _SEP + r"\d{3,4}"
    r")(?!\d)"
)
_ELEVEN_DIGIT_PREFIXES = ("070", "080", "090", "050", "0800")


def normalise_answers(answers: dict[str, Any] | None) -> dict[str, Any]:
    """``{"1": x, "step_2": y}`` -> ``{"step_1": x, "step_2": y}``; other keys are kept.

    Also: step 3 ``21-50`` -> ``21_50``; step 8 ``"a,b"`` -> ``["a", "b"]``.
    """
    result: dict[str, Any] = {}
    for key, value in (answers or {}).items():
        key = str(key).strip()
        # isdigit() is also true for "①" or "🄁", which int() refuses: ASCII digits only.
        if key.isascii() and key.isdigit():
            key = f"step_{int(key)}"
        result[key] = value
    if "step_3" in result:
        result["step_3"] = normalise_step3(result["step_3"])
    if "step_8" in result and result["step_8"] is not None:
        result["step_8"] = feature_values(result["step_8"])
    return result


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


def _replace_spans(text: str, folded: str, pattern: re.Pattern[str], token: str,
                   accept: Any = None) -> tuple[str, str]:
    out, out_folded, last = [], [], 0
    for m in pattern.finditer(folded):
        if accept is not None and not accept(m.group(0)):
            continue
        out.append(text[last:m.start()])
        out_folded.append(folded[last:m.start()])
        out.append(token)
        out_folded.append(token)
        last = m.end()
    out.append(text[last:])
    out_folded.append(folded[last:])
    return "".join(out), "".join(out_folded)


def mask_pii(text: str) -> str:
    """Replace URLs, e-mail addresses and phone numbers in ``text`` with [URL]/[EMAIL]/[PHONE]."""
    folded = text.translate(_FOLD)
    text, folded = _replace_spans(text, folded, _URL_RE, "[URL]")
    text, folded = _replace_spans(text, folded, _EMAIL_RE, "[EMAIL]")
    text, folded = _replace_spans(text, folded, _PHONE_RE, "[PHONE]", _valid_phone_digits)
    return text


# --- §4.2 prompt injection ---------------------------------------------------------------------
_YOU = r"(?:あなた|貴方|君|きみ|お前|おまえ)"
_PRIOR = (r"(?:前|以前|上|上記|先|先ほど|さっき|これまで|今まで|それまで|ここまで|最初|元|もと|全て|すべて|全部|他|ほか|"
          r"システム|与えられた|設定された)")
_INSTR = r"(?:指示|命令|指令|プロンプト|ルール|規則|ガイドライン|制約|役割)"
_INJECTION_PATTERNS: list[re.Pattern[str]] = [
    # 1. role change
    re.compile(_YOU + r"(?:は|って)(?:今から|これから|今後|以後|いまから)?.{0,30}?(?:になって|になりきって|になれ|"
               r"として(?:振る舞|ふるま|行動|回答|答え|働)|のふりを|を演じ|に変身)"),
    re.compile(r"(?:今から|これから|以降|今後)(?:は)?" + _YOU + r"(?:は|が)"),
    re.compile(_YOU + r"の(?:役割|ロール|役|キャラ|人格|立場|設定)を?(?:変更|変え|切り替え|切りかえ|上書き|無視)"),
    re.compile(r"(?:開発者|デバッグ|制限解除|脱獄|ジェイルブレイク|god|dan)\s*モード(?:に|で|を)"),
    re.compile(r"\b(?:you are now|you're now|from now on,? you|pretend (?:to be|you are|you're)|"
               r"role-?play as|assume the role|take on the role|you will now be|switch roles?)\b"),
    re.compile(r"^(?:please |now |)act as\b"),
    re.compile(r"\b(?:now act as|act as dan|must act as|act as an? (?:unrestricted|unfiltered|jailbroken|different))\b"),
    re.compile(r"として(?:振る舞|ふるま)(?:って(?:ください|下さい|くれ|ほしい|欲しい)?(?:[。！!、,]|$)|え(?:[。！!]|$)|いなさい)"),
    re.compile(r"\b(?:developer|dan|jailbreak|god) mode\b"),
    # 2. ignore instructions
    re.compile(_PRIOR + r"の?" + _INSTR + r"(?:は|を|も|に)?(?:全て|すべて|全部|一旦|いったん)?(?:無視|忘れ|破棄|"
               r"取り消|取消|無効に|なかったこと|従わな|守らな|気にしな)"),
    re.compile(_INSTR + r"(?:は|を|に|も)?(?:全て|すべて|全部|一旦|いったん)?(?:無視|忘れ)(?:して|しろ|せよ|て|ろ)"
               r"(?:ください|下さい)?(?:[、,。!！]|$)"),
    re.compile(r"(?:ここまで|これまで|今まで|上記|以上|先ほど)の(?:内容|会話|やり取り|やりとり|文章|説明|話)(?:は|を)?"
               r"(?:全て|すべて|全部|一旦|いったん)?(?:無視|忘れ|リセット|なかったこと)"),
    re.compile(r"前提(?:条件)?(?:は|を)?(?:全て|すべて|全部)?(?:無視|忘れ)"),
    re.compile(r"(?:新しい|新たな|追加の|本当の|真の|次の)(?:指示|命令|プロンプト|システムプロンプト)\s*[:：]"),
    re.compile(r"(?:^|\n)\s*(?:#+\s*)?(?:システム|system|assistant|アシスタント|開発者|developer)\s*[:：]\s*"
               r"(?:あなた|君|you\b|以下|これから|今から|new\b|ignore\b|無視|指示)"),
    re.compile(r"\b(?:forget|ignore|disregard)\b (?:everything|all|anything)\b.{0,15}?\b(?:above|before|previous(?:ly)?|"
               r"prior|so far|earlier)\b"),
    re.compile(r"\b(?:ignore|disregard|forget|override)\b.{0,20}?\b(?:instructions?|prompts?|rules?|directions?)\b"
               r".{0,10}?\b(?:above|before|earlier|previously|given)\b"),
    re.compile(r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,30}?\b(?:previous|prior|above|earlier|"
               r"preceding|all|your|system|initial|original)\b.{0,20}?\b(?:instructions?|prompts?|rules?|"
               r"directions?|directives?|guidelines?|constraints?)\b"),
    re.compile(r"\b(?:do not|don't|stop) (?:follow|obey)(?:ing)? (?:the |your |any )?(?:instructions?|rules?)\b"),
    # 3. prompt leak
    re.compile(r"(?:システム|初期|最初の|元の|内部|隠し|裏|事前)(?:の)?(?:プロンプト|指示|命令)"
               r"(?:の内容|の全文|全文)?(?:を|は|が)?.{0,10}?(?:教え|見せ|表示|出力|開示|公開|書き出|漏ら|答え|繰り返|共有|貼|"
               r"何|なに|どんな)"),
    re.compile(r"(?:プロンプト|指示文)(?:の内容|の全文|全文)?(?:を|は)?(?:全文|全部|すべて|そのまま)?(?:教え|見せ|表示|出力|開示|"
               r"公開|書き出|漏ら|繰り返)"),
    re.compile(_YOU + r"(?:が|の|に)?.{0,15}?(?:指示|命令|プロンプト|ルール)(?:の内容)?(?:を|は)?.{0,6}?(?:教え|見せ|表示|"
               r"出力|開示|公開|書き出|漏ら|何|なに)"),
    re.compile(r"(?:設定された|設定されている|与えられた|与えられている|受けている|受けた|事前の|隠された)(?:指示|命令|プロンプト|"
               r"ルール)(?:の内容)?(?:を|は)?.{0,6}?(?:教え|見せ|表示|出力|開示|公開|書き出|漏ら)"),
    re.compile(r"\b(?:reveal|show|print|tell|repeat|output|display|leak|dump|give|share|what(?:'s| is| are| were))\b"
               r".{0,25}?\b(?:system prompt|initial prompt|hidden prompt|original prompt|your prompt|your instructions|"
               r"the instructions you were given|your rules)\b"),
    re.compile(r"\bsystem prompt\b"),
    # 4. JSON output override
    re.compile(r"json(?:形式|フォーマット|出力|で(?:の)?(?:回答|出力|返答|応答))?(?:を|は|で|の)?(?:出力|回答|返答)?"
               r"(?:やめ|止め|辞め|使わな|使用しな|無視|しないで|出さな|なしで)"),
    re.compile(r"json(?:ではなく|じゃなく|でなく|以外の形|以外で)"),
    re.compile(r"json(?:(?!連携|連動|api|ファイル|データ).){0,12}?(?:やめ|止め|辞め|使わな|出力しな|出力せず|出さな|返さな)"),
    re.compile(r"(?:マークダウン|markdown|平文|自然文|箇条書きの文章)(?:だけ|のみ)?で(?:回答|答え|返答|返事)"),
    re.compile(r"(?:出力|回答|応答|返答)(?:の)?(?:形式|フォーマット|スキーマ)(?:を|は)?(?:無視|守らな|気にしな)"),
    re.compile(r"(?:(?:普通の|通常の|自由な|ただの)(?:文章|テキスト)|平文|自然文|自由形式)(?:だけ|のみ)?で"
               r"(?:回答|答え|返答|返して|返事)"),
    re.compile(r"\b(?:stop|quit|don't|do not|no longer|never)\b.{0,15}?\b(?:using|use|outputting|output|returning|"
               r"return|responding in|respond in|replying in|reply in|formatting as|format as)\b.{0,10}?\bjson\b"),
    re.compile(r"\b(?:respond|answer|reply)\b.{0,10}?\b(?:in|as|with) (?:plain text|prose|markdown|free text)\b"),
    re.compile(r"\b(?:instead of|rather than) (?:the )?json\b.{0,10}?\b(?:respond|answer|reply|write)"),
    re.compile(r"\bignore the (?:json|output) (?:format|schema)\b"),
]

_SENTENCE_RE = re.compile(r"[^。！？!?\n]+[。！？!?\n]*|[。！？!?\n]+")
_EN_SENTENCE_SPLIT = re.compile(r"(?<=[.;])\s+")


def _fold_for_detection(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).lower()
    # 「指 示 を 無 視」: spaces between Japanese characters hide nothing.
    folded = re.sub(r"(?<=[^\x00-\x7f])\s+(?=[^\x00-\x7f])", "", folded)
    return re.sub(r"[ \t]+", " ", folded)


def is_injection(text: str) -> bool:
    """True when ``text`` contains one of the four injection kinds of §4.2 (JA or EN)."""
    folded = _fold_for_detection(text)
    return any(p.search(folded) for p in _INJECTION_PATTERNS)


def filter_injection(text: str) -> str:
    """Replace each sentence of ``text`` that attempts a prompt injection with ``[FILTERED]``."""
    out: list[str] = []
    for sentence in _SENTENCE_RE.findall(text):
        parts = _EN_SENTENCE_SPLIT.split(sentence)
        for i, part in enumerate(parts):
            body = part.rstrip("。！？!?.\n")
            tail = part[len(body):]
            if body.strip() and is_injection(body):
                out.append(FILTERED + tail)
            else:
                out.append(part)
            if i < len(parts) - 1:
                out.append(" ")
    return "".join(out)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, list):
        return [_mask_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items() if k not in PII_KEYS}
    return value


def sanitize(answers: dict[str, Any] | None, step_8_categories: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``user_input`` sent to LLMs and the price engine (see the module docstring)."""
    normalised = normalise_answers(answers)
    result: dict[str, Any] = {}
    for key, value in normalised.items():
        if key in PII_KEYS:
            continue
        value = _mask_value(value)
        if key in INJECTION_FIELDS and isinstance(value, str):
            value = filter_injection(value)
        result[key] = value
    if step_8_categories:
        merged = dict(result.get("step_8_categories") or {}) if isinstance(result.get("step_8_categories"), dict) else {}
        merged.update(step_8_categories)
        result["step_8_categories"] = merged
    return result
