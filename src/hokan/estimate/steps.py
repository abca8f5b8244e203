"""Sessions, step answers and the step-7 dynamic questions (design document 004 §2.1, §3, §6.3).

Step values (§5.4, §5.7 and issue 4)::

    1  corporation | sole_proprietor | other
    2  an industry of ``pricing.INDUSTRIES`` (manufacturing, retail, healthcare, ...)
    3  1_5 | 6_20 | 21_50 | 51_100 | 101_plus   ("21-50" forms accepted)
    4  free text (課題・要望), at most 2,000 characters
    5  internal | client | client_b2b | client_b2c | undecided
    6  web_app | mobile_app | undecided_other
    7  new | migration | enhancement | undecided
    8  feature values: a list, or "a,b,c"; at most 20, each 3-50 characters
    9  asap | 3months | 6months | 1year | undecided
    10 pc | mobile | both | tablet
    11 under_500k | 500k_1m | 1m_3m | 3m_5m | 5m_10m | 10m_plus | undecided
    12 free text (追加要望), at most 2,000 characters, may be empty
    13 contact: a JSON string or object {name, company, email, phone?}
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from hokan.core.errors import InputError, LLMConfigError
from hokan.estimate import pricing
from hokan.estimate.adapters import FallbackAdapter, LLMAdapter, LLMAttemptsExhausted, create_llm_adapter
from hokan.estimate.generate import SessionNotFound
from hokan.estimate.models import EstimateSession
from hokan.estimate.sanitizer import normalise_answers, sanitize

log = logging.getLogger(__name__)

STEP_CHOICES: dict[int, dict[str, str]] = {
    1: {"corporation": "法人", "sole_proprietor": "個人事業主", "other": "その他"},
    2: pricing.INDUSTRIES,
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
_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_FEATURE_RE = re.compile(r"^[A-Za-z0-9_\-]{3,50}$")


def session_cache_key(session_id: Any) -> str:
    return f"estimate:session:{session_id}"


def forget_cached_session(session_id: Any) -> None:
    cache.delete(session_cache_key(session_id))


def parse_contact(value: Any) -> dict[str, str]:
    """Step 13 as ``{"name", "company", "email", "phone"}`` (missing parts ""); never raises."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"name": "", "company": "", "email": "", "phone": ""}
    if not isinstance(value, dict):
        return {"name": "", "company": "", "email": "", "phone": ""}

    def pick(*keys: str) -> str:
        for key in keys:
            if isinstance(value.get(key), str) and value[key].strip():
                return value[key].strip()
        return ""

    return {"name": pick("name", "user_name"), "company": pick("company", "company_name"),
            "email": pick("email"), "phone": pick("phone")}


def validate_step_value(step: int, value: Any) -> Any:
    """The normalised value of one answer, or InputError (Japanese reason, field ``step_N``)."""
    field = f"step_{step}"
    title = STEP_TITLES.get(step, field)
    if step not in STEP_TITLES:
        raise InputError("ステップ番号は1〜13で指定してください", field=field)
    if step in STEP_CHOICES:
        if step == 3:
            value = pricing.normalise_step3(value)
        if not isinstance(value, str) or value not in STEP_CHOICES[step]:
            allowed = "、".join(STEP_CHOICES[step])
            raise InputError(f"「{title}」の値が正しくありません（{allowed} のいずれか）", field=field)
        return value
    if step in (4, 12):
        if value is None:
            return ""
        if not isinstance(value, str):
            raise InputError(f"「{title}」は文字列で入力してください", field=field)
        if len(value) > FREE_TEXT_MAX:
            raise InputError(f"「{title}」は{FREE_TEXT_MAX}文字以内で入力してください", field=field)
        return value
    if step == 8:
        if value is not None and not isinstance(value, (str, list)):
            raise InputError("「機能」は機能の値のリストで指定してください", field=field)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise InputError("「機能」は機能の値のリストで指定してください", field=field)
        values = pricing.feature_values(value)
        if len(values) > 20:
            raise InputError("「機能」は20個まで選択できます", field=field)
        bad = [v for v in values if not _FEATURE_RE.match(v)]
        if bad:
            raise InputError(f"「機能」の値が正しくありません: {bad[0][:50]}", field=field)
        return values
    # step 13
    if isinstance(value, str):
        try:
            parsed = json.loads(value) if value.strip() else {}
        except ValueError:
            raise InputError("「連絡先」はJSON形式で指定してください", field=field) from None
    else:
        parsed = value
    if not isinstance(parsed, dict):
        raise InputError("「連絡先」はJSON形式で指定してください", field=field)
    if any(not isinstance(v, (str, type(None))) or (isinstance(v, str) and len(v) > 200) for v in parsed.values()):
        raise InputError("「連絡先」の各項目は200文字以内の文字列で指定してください", field=field)
    email = parsed.get("email")
    if email and not _EMAIL_RE.match(email.strip()):
        raise InputError("メールアドレスの形式が正しくありません", field=field)
    return value


def normalised_answers(answers: dict[str, Any] | None) -> dict[str, Any]:
    """Validate and normalise every ``"N"`` / ``step_N`` answer; other keys are ignored.

    Raises InputError for the first invalid value.
    """
    result: dict[str, Any] = {}
    for key, value in normalise_answers(answers).items():
        match = re.fullmatch(r"step_([0-9]{1,2})", key)
        if not match:
            continue
        step = int(match.group(1))
        result[key] = validate_step_value(step, value)
    return result


def missing_for_generate(answers: dict[str, Any]) -> list[int]:
    """Required steps (1-3, 5-7, 9-11) without an answer."""
    return [n for n in REQUIRED_FOR_GENERATE if answers.get(f"step_{n}") in (None, "")]


def create_session() -> EstimateSession:
    return EstimateSession.objects.create()


def get_session(session_id: Any) -> EstimateSession:
    session = EstimateSession.objects.filter(pk=session_id).first()
    if session is None:
        raise SessionNotFound(session_id)
    return session


def dynamic_features(user_input: dict[str, Any], adapter: LLMAdapter) -> tuple[list[dict[str, str]], str]:
    """The first AI call (§6.3) with its fallback: (features, source "gemini"/"openai"/"fallback")."""
    try:
        return adapter.generate_dynamic_questions(user_input), adapter.name
    except (LLMAttemptsExhausted, LLMConfigError) as exc:
        log.warning("Dynamic questions: using the industry defaults: %s", getattr(exc, "problems", exc))
    return FallbackAdapter().generate_dynamic_questions(user_input), "fallback"


def record_step(session_id: Any, step_number: int, value: Any, answers: dict[str, Any] | None = None,
                adapter: LLMAdapter | None = None) -> EstimateSession:
    """Save one answer (and any ``answers`` sent along). Step 7 with answers triggers §6.3.

    Raises:
        SessionNotFound: no such session.
        InputError: an invalid value (Japanese reason).
    """
    session = get_session(session_id)
    merged = normalised_answers(answers)
    merged[f"step_{step_number}"] = validate_step_value(step_number, value)
    features: list[dict[str, str]] | None = None
    if step_number == 7 and answers is not None:  # the LLM call happens outside the row lock
        known = {**session.answers, **merged}
        user_input = sanitize({k: v for k, v in known.items() if k in {f"step_{n}" for n in range(1, 8)}})
        features, source = dynamic_features(user_input, adapter or create_llm_adapter(settings))
    with transaction.atomic():  # merge into the answers as stored now: a concurrent step is not lost
        session = EstimateSession.objects.select_for_update().get(pk=session.pk)
        session.answers = {**session.answers, **merged}
        session.current_step = max(session.current_step, step_number)
        fields = ["answers", "current_step", "updated_at"]
        if features is not None:
            session.step8_features = features
            session.step_8_categories = {f["value"]: f["category"] for f in features}
            session.features_source = source
            fields += ["step8_features", "step_8_categories", "features_source"]
        session.save(update_fields=fields)
    forget_cached_session(session.pk)
    return session
