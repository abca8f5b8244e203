"""The questionnaire's answers: their keys, their allowed values, and their validation (document
004 §3, §5.4, §5.7). Pure (no Django), beside the sanitiser (``sanitizer``), which masks what
is validated here before anything reaches an LLM.

Step values::

    1  corporation | sole_proprietor | other
    2  an industry of ``tables.INDUSTRIES`` (manufacturing, retail, healthcare, ...)
    3  1_5 | 6_20 | 21_50 | 51_100 | 101_plus   ("21-50" forms accepted)
    4  free text (課題・要望), at most 2,000 characters
    5  internal | client | client_b2b | client_b2c | undecided
    6  web_app | mobile_app | undecided_other
    7  new | migration | enhancement | undecided
    8  feature values: a list, or "a,b,c"; at most 20, each 3-50 characters [A-Za-z0-9_-]
    9  asap | 3months | 6months | 1year | undecided
    10 pc | mobile | both | tablet
    11 under_500k | 500k_1m | 1m_3m | 3m_5m | 5m_10m | 10m_plus | undecided
    12 free text (追加要望), at most 2,000 characters, may be empty
    13 contact: a JSON string or object {name, company, email, phone?}

``clean_answers`` is the one gate every answer passes (the API's ``/step`` and ``/generate``,
``hokan estimate quote``): a value of the wrong type (a number or a boolean where step 8
expects a list, a list where step 2 expects a text) is an ``InputError`` naming the step, in
Japanese, never a crash further down.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hokan.core.errors import InputError
from hokan.estimate.pricing import feature_values, normalise_step3
from hokan.estimate.tables import INDUSTRIES

STEP_CHOICES: dict[int, dict[str, str]] = {
    1: {"corporation": "法人", "sole_proprietor": "個人事業主", "other": "その他"},
    2: INDUSTRIES,
    3: {"1_5": "1〜5人", "6_20": "6〜20人", "21_50": "21〜50人", "51_100": "51〜100人", "101_plus": "101人以上"},
    5: {"internal": "社内利用", "client": "取引先・顧客向け", "client_b2b": "取引先（法人）向け",
        "client_b2c": "一般消費者向け", "undecided": "未定"},
    6: {"web_app": "Webアプリ", "mobile_app": "スマートフォンアプリ", "undecided_other": "未定・その他"},
    7: {"new": "新規開発", "migration": "既存システムからの移行", "enhancement": "既存システムの改修", "undecided": "未定"},
    9: {"asap": "できるだけ早く", "3months": "3か月以内", "6months": "6か月以内", "1year": "1年以内", "undecided": "未定"},
    10: {"pc": "パソコン", "mobile": "スマートフォン", "both": "パソコンとスマートフォン", "tablet": "タブレット"},
    11: {"under_500k": "50万円未満", "500k_1m": "50万〜100万円", "1m_3m": "100万〜300万円", "3m_5m": "300万〜500万円",
         "5m_10m": "500万〜1,000万円", "10m_plus": "1,000万円以上", "undecided": "未定"},
}
STEP_TITLES = {1: "事業形態", 2: "業種", 3: "ユーザー数", 4: "課題・要望", 5: "導入先", 6: "システム種別", 7: "開発種別",
               8: "機能", 9: "導入時期", 10: "利用デバイス", 11: "予算目安", 12: "追加要望", 13: "連絡先"}
REQUIRED_FOR_GENERATE = (1, 2, 3, 5, 6, 7, 9, 10, 11)
FREE_TEXT_MAX = 2000
STEP_8_MAX_VALUES = 20
CONTACT_PART_MAX = 200
_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_FEATURE_RE = re.compile(r"^[A-Za-z0-9_\-]{3,50}$")
_STEP_KEY = re.compile(r"step_([0-9]{1,2})")
_EMPTY_CONTACT = {"name": "", "company": "", "email": "", "phone": ""}


def step_key(key: Any) -> str:
    """``"8"`` → ``"step_8"``; other keys as given (stripped). ASCII digits only: ``str.isdigit``
    is also true for "①", which ``int`` refuses."""
    key = str(key).strip()
    return f"step_{int(key)}" if key.isascii() and key.isdigit() else key


def normalise_answers(answers: dict[str, Any] | None) -> dict[str, Any]:
    """``{"1": x, "step_2": y}`` -> ``{"step_1": x, "step_2": y}``; other keys are kept.

    Also: step 3 ``21-50`` -> ``21_50``; step 8 ``"a,b"`` -> ``["a", "b"]``. For answers
    ``clean_answers`` has validated (the sanitiser's first step); a step 8 of another type
    raises ``InputError`` (``pricing.feature_values``).
    """
    result = {step_key(key): value for key, value in (answers or {}).items()}
    if "step_3" in result:
        result["step_3"] = normalise_step3(result["step_3"])
    if "step_8" in result and result["step_8"] is not None:
        result["step_8"] = feature_values(result["step_8"])
    return result


def _name(step: int) -> str:
    """「ステップ8「機能」」: how a message names a step."""
    return f"ステップ{step}「{STEP_TITLES[step]}」"


def parse_contact(value: Any) -> dict[str, str]:
    """Step 13 as ``{"name", "company", "email", "phone"}`` (missing parts ""); never raises."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return dict(_EMPTY_CONTACT)
    if not isinstance(value, dict):
        return dict(_EMPTY_CONTACT)

    def pick(*keys: str) -> str:
        for key in keys:
            if isinstance(value.get(key), str) and value[key].strip():
                return value[key].strip()
        return ""

    return {"name": pick("name", "user_name"), "company": pick("company", "company_name"),
            "email": pick("email"), "phone": pick("phone")}


def validate_step_value(step: int, value: Any) -> Any:
    """The normalised value of one answer.

    Returns: a choice key (str) for the choice steps, the text for 4 / 12 ("" for None), a
    list of feature values for 8, the value as sent (JSON text or object) for 13.

    Raises:
        InputError: field ``step_N``, a Japanese reason naming the step (unknown step, wrong
            type, a value not offered, too long, a malformed contact or e-mail address).
    """
    field = f"step_{step}"
    if step not in STEP_TITLES:
        raise InputError("ステップ番号は1〜13で指定してください", field=field)
    name = _name(step)
    if step in STEP_CHOICES:
        if step == 3:
            value = normalise_step3(value)
        if not isinstance(value, str) or value not in STEP_CHOICES[step]:
            allowed = "、".join(STEP_CHOICES[step])
            raise InputError(f"{name}の値が正しくありません（{allowed} のいずれか）", field=field)
        return value
    if step in (4, 12):
        if value is None:
            return ""
        if not isinstance(value, str):
            raise InputError(f"{name}は文字列で入力してください", field=field)
        if len(value) > FREE_TEXT_MAX:
            raise InputError(f"{name}は{FREE_TEXT_MAX}文字以内で入力してください", field=field)
        return value
    if step == 8:
        if value is not None and not isinstance(value, (str, list)):
            raise InputError(f"{name}は機能の値のリストで指定してください", field=field)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise InputError(f"{name}は機能の値（文字列）のリストで指定してください", field=field)
        values = feature_values(value)
        if len(values) > STEP_8_MAX_VALUES:
            raise InputError(f"{name}は{STEP_8_MAX_VALUES}個まで選択できます", field=field)
        bad = [v for v in values if not _FEATURE_RE.match(v)]
        if bad:
            raise InputError(f"{name}の値が正しくありません: {bad[0][:50]}", field=field)
        return values
    # step 13
    if isinstance(value, str):
        try:
            parsed = json.loads(value) if value.strip() else {}
        except ValueError:
            raise InputError(f"{name}はJSON形式で指定してください", field=field) from None
    else:
        parsed = value
    if not isinstance(parsed, dict):
        raise InputError(f"{name}はJSON形式（オブジェクト）で指定してください", field=field)
    if any(not isinstance(v, (str, type(None))) or (isinstance(v, str) and len(v) > CONTACT_PART_MAX)
           for v in parsed.values()):
        raise InputError(f"{name}の各項目は{CONTACT_PART_MAX}文字以内の文字列で指定してください", field=field)
    email = parsed.get("email")
    if email and not _EMAIL_RE.match(email.strip()):
        raise InputError(f"{name}: メールアドレスの形式が正しくありません", field=field)
    return value


def clean_answers(answers: Any) -> dict[str, Any]:
    """Validate and normalise every ``"N"`` / ``step_N`` answer; other keys are ignored.

    answers: the request's ``answers`` object (None: no answers).
    Returns ``{"step_N": normalised value}``.

    Raises:
        InputError: for the first invalid value (field ``step_N``), or when ``answers`` is not
            an object.
    """
    if answers is None:
        return {}
    if not isinstance(answers, dict):
        raise InputError("answers はステップ番号をキーにしたオブジェクトで指定してください", field="answers")
    result: dict[str, Any] = {}
    for key, value in answers.items():
        match = _STEP_KEY.fullmatch(step_key(key))
        if match:
            result[match.group(0)] = validate_step_value(int(match.group(1)), value)
    return result


def missing_for_generate(answers: dict[str, Any]) -> list[int]:
    """Required steps (1-3, 5-7, 9-11) without an answer."""
    return [n for n in REQUIRED_FOR_GENERATE if answers.get(f"step_{n}") in (None, "")]


def missing_message(missing: list[int]) -> str:
    """「未回答のステップがあります: 2（業種）、…」."""
    return "未回答のステップがあります: " + "、".join(f"{n}（{STEP_TITLES[n]}）" for n in missing)
