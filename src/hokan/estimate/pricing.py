"""The deterministic price engine of design document 004 §5. Pure: no Django, no IO.

``calculate(user_input) -> dict`` (the document's ``calculated_data``)::

    {
      "features": [{"value", "label", "category", "category_source", "base_price",
                    "standard_price", "hybrid_price"}, ...],      # prices in JPY (int)
      "multiplier": float,            # the seven factors multiplied, capped at 4.0 (§5.4)
      "raw_multiplier": float,        # before the cap
      "factors": {"user_scale": 1.5, ...},
      "industry": str, "industry_multiplier": float,              # §5.5
      "total_standard": int, "total_hybrid": int,                 # sums of the rounded prices
      "budget": {"status", "upper_limit", "ratio", "over_percent", "message"},   # §5.7
      "budget_status": str,
      "confidence": {"level", "range_label", "undecided_count", "note"},          # §5.8
      "discussion_hints": [str, ...],                              # §5.8-§5.9, Japanese
      "edge_cases": [str, ...],                                    # machine-readable codes
      "user_input": {...},                                          # the input, as given
    }

Rounding (the document is silent; issue 4 fixes it)::

    standard_price = round_half_up(base × multiplier × industry / 0.65, to ¥1,000)
    hybrid_price   = round_half_up(standard_price × 0.6, to ¥1,000)

All arithmetic is done in ``Decimal`` so that e.g. 1.15 × 1.05 is exact. Unknown step values
count as factor 1.0 (``answers.clean_answers`` validates values before they get here); a step 8
that is not a list or text raises ``InputError``. The tables (§5.2 prices, §5.3 features, the
industries, §5.7 budget limits) are in ``tables``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hokan.core.errors import InputError
from hokan.estimate.tables import (
    BASE_PRICES,
    BUDGET_UPPER_LIMITS,
    DEFAULT_CATEGORY,
    FEATURE_TO_CATEGORY,
    INDUSTRIES,
    INDUSTRY_FEATURE_VALUES,
)

__all__ = ["BASE_PRICES", "BUDGET_UPPER_LIMITS", "DEFAULT_CATEGORY", "FEATURE_TO_CATEGORY", "INDUSTRIES",
           "calculate", "check_budget", "feature_values", "format_price", "normalise_step3", "resolve_feature"]

# --- §5.4 factors: name -> (step key, value -> multiplier) ---------------------------------
_FACTORS: dict[str, tuple[str, dict[str, Decimal]]] = {
    "user_scale": (
        "step_3",
        {"1_5": Decimal("1.0"), "6_20": Decimal("1.2"), "21_50": Decimal("1.5"),
         "51_100": Decimal("2.0"), "101_plus": Decimal("2.5")},
    ),
    "system_type": (
        "step_6", {"web_app": Decimal("1.0"), "mobile_app": Decimal("1.5"), "undecided_other": Decimal("1.1")}
    ),
    "device": (
        "step_10",
        {"pc": Decimal("1.0"), "mobile": Decimal("1.0"), "both": Decimal("1.3"), "tablet": Decimal("1.4")},
    ),
    "deployment_target": (
        "step_5",
        {"internal": Decimal("1.0"), "client": Decimal("1.3"), "client_b2b": Decimal("1.3"),
         "client_b2c": Decimal("1.5"), "undecided": Decimal("1.1")},
    ),
    "development_type": (
        "step_7",
        {"new": Decimal("1.0"), "migration": Decimal("1.2"), "enhancement": Decimal("0.7"),
         "undecided": Decimal("1.0")},
    ),
    "timeline": (
        "step_9",
        {"asap": Decimal("1.15"), "3months": Decimal("1.05"), "6months": Decimal("1.0"),
         "1year": Decimal("0.95"), "undecided": Decimal("1.0")},
    ),
    "business_type": (
        "step_1", {"corporation": Decimal("1.0"), "sole_proprietor": Decimal("0.85"), "other": Decimal("1.0")}
    ),
}
FACTORS = _FACTORS
MULTIPLIER_CAP = Decimal("4.0")

# --- §5.5 industry factor -------------------------------------------------------------------
_INDUSTRY_MULTIPLIERS: dict[str, Decimal] = {"healthcare": Decimal("1.15"), "logistics": Decimal("1.05")}

# §5.6: implementation is 65 % of the whole (要件定義10 / 設計10 / 実装65 / テスト10 / 導入5).
IMPLEMENTATION_SHARE = Decimal("0.65")
HYBRID_FACTOR = Decimal("0.6")
PRICE_UNIT_JPY = Decimal("1000")

# --- §5.7 budget check (the limits: tables.BUDGET_UPPER_LIMITS) -------------------------------
SLIGHTLY_OVER_RATIO = Decimal("1.3")

# --- §5.8 confidence --------------------------------------------------------------------------
CHALLENGES_MIN_CHARS = 30
_CONFIDENCE = {
    "high": ("±20%", "ご回答内容が具体的なため、比較的精度の高い概算です（±20%程度）。"),
    "medium": ("±30%", "一部未確定の項目があるため、±30%程度の幅を見込んだ概算です。"),
    "low": ("±50%", "未確定の項目が多いため、±50%程度の幅がある参考値です。詳細はお打ち合わせで精査いたします。"),
}

# --- §5.9 NFR keywords -> hint ----------------------------------------------------------------
_NFR_RULES: list[tuple[tuple[str, ...], str]] = [
    (
        ("セキュリティ", "個人情報", "暗号化", "情報漏洩", "情報漏えい", "アクセス権限", "二段階認証", "二要素認証",
         "多要素認証", "マイナンバー", "ISMS", "Pマーク", "プライバシーマーク", "security", "encryption", "privacy"),
        "セキュリティ要件の確認",
    ),
    (
        ("可用性", "冗長", "SLA", "24時間", "無停止", "止まらない", "稼働率", "障害対策", "バックアップ",
         "availability", "redundan", "uptime"),
        "高可用性要件の確認",
    ),
    (
        ("多言語", "英語対応", "英語版", "中国語", "韓国語", "ベトナム語", "外国語", "外国人", "インバウンド",
         "multilingual", "multi-language", "english"),
        "多言語対応の確認",
    ),
]

STEP3_ALIASES = {"1-5": "1_5", "6-20": "6_20", "21-50": "21_50", "51-100": "51_100", "101+": "101_plus",
                 "101-": "101_plus", "101_plus": "101_plus", "101plus": "101_plus"}


@dataclass(frozen=True)
class FeaturePrice:
    value: str
    label: str
    category: str
    category_source: str  # "table" | "ai" | "default"
    base_price: int
    standard_price: int
    hybrid_price: int


def round_half_up(amount: Decimal, unit: Decimal = PRICE_UNIT_JPY) -> int:
    """Round a JPY amount half-up to a multiple of ``unit`` (default ¥1,000). 1_500 -> 2_000."""
    return int((amount / unit).quantize(Decimal("1"), rounding=ROUND_HALF_UP) * unit)


def base_price(category: str) -> int:
    """Median of the category's (min, max) in JPY (§5.2); unknown categories use the default."""
    low, high = BASE_PRICES.get(category, BASE_PRICES[DEFAULT_CATEGORY])
    return (low + high) // 2


def feature_prices(base_jpy: int, multiplier: Decimal, industry_multiplier: Decimal) -> tuple[int, int]:
    """(standard_price, hybrid_price) in JPY for one feature (§5.6, rounded to ¥1,000)."""
    standard = round_half_up(Decimal(base_jpy) * multiplier * industry_multiplier / IMPLEMENTATION_SHARE)
    hybrid = round_half_up(Decimal(standard) * HYBRID_FACTOR)
    return standard, hybrid


def normalise_step3(value: Any) -> Any:
    """``21-50`` -> ``21_50`` etc.; other values unchanged."""
    if isinstance(value, str):
        return STEP3_ALIASES.get(value.strip().replace("人", ""), value.strip())
    return value


def feature_values(step_8: Any) -> list[str]:
    """Step 8 as a list of distinct feature values, in order. Accepts a list or "a,b,c".

    Raises:
        InputError: (field ``step_8``) anything else — a number, a boolean, an object.
    """
    if step_8 is None:
        return []
    if not isinstance(step_8, (str, list, tuple)):
        raise InputError("ステップ8「機能」は機能の値のリストで指定してください", field="step_8")
    items = step_8.split(",") if isinstance(step_8, str) else list(step_8)
    seen: list[str] = []
    for item in items:
        value = str(item).strip()
        if value and value not in seen:
            seen.append(value)
    return seen


def resolve_feature(value: str, ai_categories: dict[str, str] | None = None,
                    ai_labels: dict[str, str] | None = None) -> tuple[str, str, str]:
    """(label, category, source) for a step-8 value, in the order of §5.3.

    1. the fixed ``FEATURE_TO_CATEGORY`` table (source "table");
    2. ``step_8_categories`` saved by the first AI call, if the category exists (source "ai");
    3. ``DEFAULT_CATEGORY`` (source "default").
    """
    if value in FEATURE_TO_CATEGORY:
        label, category = FEATURE_TO_CATEGORY[value]
        return label, category, "table"
    label = (ai_labels or {}).get(value) or value
    category = (ai_categories or {}).get(value)
    if isinstance(category, str) and category in BASE_PRICES:
        return label, category, "ai"
    return label, DEFAULT_CATEGORY, "default"


def compute_multiplier(user_input: dict[str, Any]) -> tuple[Decimal, Decimal, dict[str, float]]:
    """(final, raw, factors) of §5.4: the product of the seven factors, capped at 4.0."""
    raw = Decimal("1")
    factors: dict[str, float] = {}
    for name, (step, table) in _FACTORS.items():
        value = user_input.get(step)
        if step == "step_3":
            value = normalise_step3(value)
        factor = table.get(value, Decimal("1.0")) if isinstance(value, str) else Decimal("1.0")
        factors[name] = float(factor)
        raw *= factor
    return min(raw, MULTIPLIER_CAP), raw, factors


def industry_multiplier(industry: Any) -> Decimal:
    """§5.5: healthcare 1.15, logistics 1.05, everything else 1.0."""
    return _INDUSTRY_MULTIPLIERS.get(industry, Decimal("1.0")) if isinstance(industry, str) else Decimal("1.0")


def check_budget(total_hybrid: int, budget_value: Any) -> dict[str, Any]:
    """§5.7: compare the hybrid total (JPY) with the step-11 upper limit.

    status: "within_budget" | "slightly_over" (ratio ≤ 1.3) | "significantly_over" (> 1.3)
            | "not_checked" (undecided or no answer). ``10m_plus`` has no upper limit.
    """
    if not isinstance(budget_value, str) or budget_value not in BUDGET_UPPER_LIMITS:
        return {"status": "not_checked", "upper_limit": None, "ratio": None, "over_percent": None,
                "message": "ご予算が未定のため、予算との比較は行っていません。"}
    upper = BUDGET_UPPER_LIMITS[budget_value]
    if upper is None or total_hybrid <= upper:
        return {"status": "within_budget", "upper_limit": upper,
                "ratio": None if upper is None else round(total_hybrid / upper, 3), "over_percent": None,
                "message": "ご予算の範囲内に収まる見込みです。"}
    ratio = Decimal(total_hybrid) / Decimal(upper)
    over_percent = int(((ratio - 1) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    # Under 0.5 % the rounded figure would read "約0%超過": say "わずかに" instead.
    over = f"ご予算を約{over_percent}%超過しています。" if over_percent >= 1 else "ご予算をわずかに超過しています。"
    if ratio <= SLIGHTLY_OVER_RATIO:
        return {"status": "slightly_over", "upper_limit": upper, "ratio": float(round(ratio, 3)),
                "over_percent": over_percent, "message": f"{over}機能の優先順位をご相談させてください。"}
    return {"status": "significantly_over", "upper_limit": upper, "ratio": float(round(ratio, 3)),
            "over_percent": over_percent, "message": f"{over}フェーズを分けた段階的な開発をおすすめします。"}


def assess_confidence(user_input: dict[str, Any]) -> dict[str, Any]:
    """§5.8: count undecided answers (and a challenges text under 30 characters).

    0 -> high (±20%), 1-2 -> medium (±30%), 3+ -> low (±50%).
    """
    count = 0
    count += user_input.get("step_5") == "undecided"
    count += user_input.get("step_6") == "undecided_other"
    count += user_input.get("step_7") == "undecided"
    count += user_input.get("step_9") == "undecided"
    challenges = user_input.get("step_4")
    count += len(challenges.strip()) < CHALLENGES_MIN_CHARS if isinstance(challenges, str) else 1
    level = "high" if count == 0 else "medium" if count <= 2 else "low"
    range_label, note = _CONFIDENCE[level]
    return {"level": level, "range_label": range_label, "undecided_count": int(count), "note": note}


def detect_nfr_hints(*texts: Any) -> list[str]:
    """§5.9: hints for the NFR keyword groups found in the free texts (step_4, step_12)."""
    joined = "\n".join(t for t in texts if isinstance(t, str)).lower()
    return [hint for keywords, hint in _NFR_RULES if any(k.lower() in joined for k in keywords)]


def default_feature_values(industry: Any) -> list[str]:
    """The industry's first three default feature values (used when step 8 is empty)."""
    key = industry if isinstance(industry, str) and industry in INDUSTRY_FEATURE_VALUES else "generic"
    return list(INDUSTRY_FEATURE_VALUES[key][:3])


def calculate(user_input: dict[str, Any]) -> dict[str, Any]:
    """Run §5.1 steps (1)-(9) on a sanitised ``user_input`` (keys ``step_1``…``step_12``).

    ``user_input["step_8_categories"]`` ({value: category}) and ``["step_8_labels"]``
    ({value: label}) are optional, as saved by the first AI call. Returns ``calculated_data``
    (see the module docstring); prices in JPY.
    """
    ai_categories = user_input.get("step_8_categories") or {}
    ai_labels = user_input.get("step_8_labels") or {}
    hints: list[str] = []
    edge_cases: list[str] = []

    values = feature_values(user_input.get("step_8"))
    if not values:
        values = default_feature_values(user_input.get("step_2"))
        edge_cases.append("no_features_selected")
        hints.append("機能が未選択のため、業種で一般的な機能構成で試算しています。必要な機能をお打ち合わせで確認させてください。")

    multiplier, raw_multiplier, factors = compute_multiplier(user_input)
    if raw_multiplier > MULTIPLIER_CAP:
        edge_cases.append("multiplier_capped")
        hints.append("規模・要件の条件が重なっているため、上限倍率で試算しています。詳細な要件を確認のうえ精査させてください。")
    industry = user_input.get("step_2") if isinstance(user_input.get("step_2"), str) else "other"
    ind_mult = industry_multiplier(industry)

    features: list[dict[str, Any]] = []
    for value in values:
        label, category, source = resolve_feature(value, ai_categories, ai_labels)
        if source == "default":
            edge_cases.append(f"unknown_feature:{value}")
        base = base_price(category)
        standard, hybrid = feature_prices(base, multiplier, ind_mult)
        features.append({"value": value, "label": label, "category": category, "category_source": source,
                         "base_price": base, "standard_price": standard, "hybrid_price": hybrid})
    if len(features) > 8:
        edge_cases.append("many_features")
        hints.append("機能数が多いため、優先度に応じたフェーズ分けをご検討ください。")
    if user_input.get("step_6") == "mobile_app" and user_input.get("step_10") == "pc":
        edge_cases.append("mobile_app_on_pc")
        hints.append("モバイルアプリをご希望ですが利用デバイスがPCとなっています。利用環境を確認させてください。")

    total_standard = sum(f["standard_price"] for f in features)
    total_hybrid = sum(f["hybrid_price"] for f in features)
    budget = check_budget(total_hybrid, user_input.get("step_11"))
    if budget["status"] == "significantly_over":
        hints.append("ご予算に合わせたフェーズ分け（初期リリース範囲）の検討")
    elif budget["status"] == "slightly_over":
        hints.append("ご予算に合わせた機能の優先順位の確認")
    confidence = assess_confidence(user_input)
    hints.extend(h for h in detect_nfr_hints(user_input.get("step_4"), user_input.get("step_12")) if h not in hints)

    return {
        "features": features,
        "multiplier": float(multiplier),
        "raw_multiplier": float(raw_multiplier),
        "factors": factors,
        "industry": industry,
        "industry_multiplier": float(ind_mult),
        "total_standard": total_standard,
        "total_hybrid": total_hybrid,
        "budget": budget,
        "budget_status": budget["status"],
        "confidence": confidence,
        "discussion_hints": hints,
        "edge_cases": edge_cases,
        "user_input": dict(user_input),
    }


def format_price(price_jpy: int) -> str:
    """§9.5 ``_format_price``: 1_200_000 -> "120万円" (ceil to ¥10,000)."""
    return f"{-(-int(price_jpy) // 10000)}万円"
