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
count as factor 1.0 (the API validates values before they get here).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

# --- §5.2 base price table: category -> (min JPY, max JPY) ---------------------------------
_BASE_PRICES: dict[str, tuple[int, int]] = {
    "シンプルなCRUD管理画面": (350_000, 650_000),
    "ダッシュボード・分析": (350_000, 750_000),
    "カレンダー・スケジュール": (350_000, 650_000),
    "帳票・レポート出力": (250_000, 550_000),
    "検索・フィルタリング": (200_000, 450_000),
    "承認ワークフロー": (450_000, 900_000),
    "在庫・受発注管理": (550_000, 1_100_000),
    "請求・売上管理": (450_000, 1_000_000),
    "顧客管理(CRM)": (450_000, 900_000),
    "通知・アラート": (200_000, 450_000),
    "外部API連携(単純)": (250_000, 550_000),
    "外部API連携(複雑)": (550_000, 1_100_000),
    "決済連携": (550_000, 1_300_000),
    "CSV/データインポート": (200_000, 450_000),
    "AIチャットボット": (650_000, 1_650_000),
    "マルチテナント対応": (650_000, 1_300_000),
    "データ移行ツール": (350_000, 900_000),
}
BASE_PRICES = _BASE_PRICES
DEFAULT_CATEGORY = "シンプルなCRUD管理画面"

# --- §5.3 feature value -> (Japanese label, category); the fixed table (80+ entries) ----------
_FEATURE_TO_CATEGORY: dict[str, tuple[str, str]] = {
    # CRUD / master data
    "user_management": ("ユーザー管理", "シンプルなCRUD管理画面"),
    "admin_panel": ("管理者画面", "シンプルなCRUD管理画面"),
    "master_data_management": ("マスタ管理", "シンプルなCRUD管理画面"),
    "product_management": ("商品管理", "シンプルなCRUD管理画面"),
    "employee_management": ("従業員管理", "シンプルなCRUD管理画面"),
    "staff_management": ("スタッフ管理", "シンプルなCRUD管理画面"),
    "member_management": ("会員管理", "シンプルなCRUD管理画面"),
    "property_management": ("物件管理", "シンプルなCRUD管理画面"),
    "document_management": ("文書管理", "シンプルなCRUD管理画面"),
    "equipment_management": ("設備・備品管理", "シンプルなCRUD管理画面"),
    "vehicle_management": ("車両管理", "シンプルなCRUD管理画面"),
    "project_management": ("案件管理", "シンプルなCRUD管理画面"),
    "task_management": ("タスク管理", "シンプルなCRUD管理画面"),
    "daily_report": ("日報管理", "シンプルなCRUD管理画面"),
    "patient_management": ("患者情報管理", "シンプルなCRUD管理画面"),
    "student_management": ("受講者管理", "シンプルなCRUD管理画面"),
    "course_management": ("講座管理", "シンプルなCRUD管理画面"),
    "recipe_management": ("レシピ管理", "シンプルなCRUD管理画面"),
    "quality_control": ("品質管理", "シンプルなCRUD管理画面"),
    "construction_management": ("工事管理", "シンプルなCRUD管理画面"),
    "safety_management": ("安全管理", "シンプルなCRUD管理画面"),
    "photo_management": ("現場写真管理", "シンプルなCRUD管理画面"),
    "faq_management": ("FAQ管理", "シンプルなCRUD管理画面"),
    "content_management": ("コンテンツ管理", "シンプルなCRUD管理画面"),
    "access_control": ("権限管理", "シンプルなCRUD管理画面"),
    "hr_management": ("人事情報管理", "シンプルなCRUD管理画面"),
    "skill_management": ("スキル管理", "シンプルなCRUD管理画面"),
    "contract_management": ("契約管理", "シンプルなCRUD管理画面"),
    "medical_record": ("診療記録管理", "シンプルなCRUD管理画面"),
    "care_record": ("介護記録", "シンプルなCRUD管理画面"),
    # dashboards
    "dashboard": ("ダッシュボード", "ダッシュボード・分析"),
    "sales_analysis": ("売上分析", "ダッシュボード・分析"),
    "kpi_dashboard": ("KPI可視化", "ダッシュボード・分析"),
    "production_dashboard": ("生産状況の可視化", "ダッシュボード・分析"),
    "data_analysis": ("データ分析", "ダッシュボード・分析"),
    "learning_analytics": ("学習状況分析", "ダッシュボード・分析"),
    "delivery_tracking": ("配送状況の可視化", "ダッシュボード・分析"),
    # calendars
    "schedule_management": ("スケジュール管理", "カレンダー・スケジュール"),
    "reservation_management": ("予約管理", "カレンダー・スケジュール"),
    "appointment_booking": ("予約受付", "カレンダー・スケジュール"),
    "shift_management": ("シフト管理", "カレンダー・スケジュール"),
    "attendance_management": ("勤怠管理", "カレンダー・スケジュール"),
    "production_planning": ("生産計画", "カレンダー・スケジュール"),
    "delivery_schedule": ("配送スケジュール管理", "カレンダー・スケジュール"),
    "facility_booking": ("施設予約", "カレンダー・スケジュール"),
    "construction_schedule": ("工程表管理", "カレンダー・スケジュール"),
    "viewing_reservation": ("内見予約", "カレンダー・スケジュール"),
    # reports
    "report_output": ("帳票出力", "帳票・レポート出力"),
    "pdf_export": ("PDF出力", "帳票・レポート出力"),
    "estimate_creation": ("見積書作成", "帳票・レポート出力"),
    "delivery_note": ("納品書・送り状発行", "帳票・レポート出力"),
    "daily_report_output": ("日報・月報出力", "帳票・レポート出力"),
    "certificate_issuance": ("証明書発行", "帳票・レポート出力"),
    # search
    "search": ("検索機能", "検索・フィルタリング"),
    "advanced_search": ("詳細検索", "検索・フィルタリング"),
    "property_search": ("物件検索", "検索・フィルタリング"),
    "product_search": ("商品検索", "検索・フィルタリング"),
    # workflow
    "approval_workflow": ("承認ワークフロー", "承認ワークフロー"),
    "expense_management": ("経費精算", "承認ワークフロー"),
    "leave_request": ("休暇申請", "承認ワークフロー"),
    "purchase_request": ("購買申請", "承認ワークフロー"),
    "e_contract": ("電子契約", "承認ワークフロー"),
    # inventory / orders
    "inventory_management": ("在庫管理", "在庫・受発注管理"),
    "order_management": ("受発注管理", "在庫・受発注管理"),
    "purchase_management": ("発注・仕入管理", "在庫・受発注管理"),
    "warehouse_management": ("倉庫管理", "在庫・受発注管理"),
    "shipping_management": ("出荷管理", "在庫・受発注管理"),
    "materials_management": ("資材管理", "在庫・受発注管理"),
    "parts_management": ("部品管理", "在庫・受発注管理"),
    "pos_integration": ("店舗在庫連携", "在庫・受発注管理"),
    "lot_tracking": ("ロット・トレーサビリティ管理", "在庫・受発注管理"),
    # billing
    "invoice_management": ("請求書管理", "請求・売上管理"),
    "sales_management": ("売上管理", "請求・売上管理"),
    "billing": ("請求処理", "請求・売上管理"),
    "cost_management": ("原価管理", "請求・売上管理"),
    "budget_management": ("予算管理", "請求・売上管理"),
    "rent_management": ("賃料・入金管理", "請求・売上管理"),
    "medical_billing": ("会計・請求管理", "請求・売上管理"),
    # CRM
    "customer_management": ("顧客管理", "顧客管理(CRM)"),
    "crm": ("顧客管理(CRM)", "顧客管理(CRM)"),
    "lead_management": ("見込み客管理", "顧客管理(CRM)"),
    "sales_activity": ("営業活動管理", "顧客管理(CRM)"),
    "inquiry_management": ("問い合わせ管理", "顧客管理(CRM)"),
    "point_card": ("ポイント・会員特典", "顧客管理(CRM)"),
    "tenant_management": ("入居者管理", "顧客管理(CRM)"),
    # notifications
    "notification": ("通知機能", "通知・アラート"),
    "email_notification": ("メール通知", "通知・アラート"),
    "push_notification": ("プッシュ通知", "通知・アラート"),
    "alert": ("アラート機能", "通知・アラート"),
    "reminder": ("リマインド通知", "通知・アラート"),
    # integrations
    "api_integration": ("外部システム連携", "外部API連携(単純)"),
    "line_integration": ("LINE連携", "外部API連携(単純)"),
    "google_calendar_integration": ("Googleカレンダー連携", "外部API連携(単純)"),
    "slack_integration": ("Slack連携", "外部API連携(単純)"),
    "map_integration": ("地図連携", "外部API連携(単純)"),
    "sso": ("シングルサインオン", "外部API連携(単純)"),
    "accounting_integration": ("会計ソフト連携", "外部API連携(複雑)"),
    "erp_integration": ("基幹システム連携", "外部API連携(複雑)"),
    "ec_integration": ("ECサイト連携", "外部API連携(複雑)"),
    "iot_integration": ("IoT機器連携", "外部API連携(複雑)"),
    "gps_tracking": ("GPS位置情報管理", "外部API連携(複雑)"),
    "electronic_medical_record_integration": ("電子カルテ連携", "外部API連携(複雑)"),
    # payments
    "payment": ("オンライン決済", "決済連携"),
    "online_payment": ("オンライン決済", "決済連携"),
    "subscription_billing": ("定期課金", "決済連携"),
    "ec_site": ("ECサイト", "決済連携"),
    "mobile_order": ("モバイルオーダー", "決済連携"),
    # imports
    "csv_import": ("CSV取り込み", "CSV/データインポート"),
    "csv_export": ("CSV出力", "CSV/データインポート"),
    "data_import": ("データ取り込み", "CSV/データインポート"),
    "excel_import": ("Excel取り込み", "CSV/データインポート"),
    # AI
    "ai_chatbot": ("AIチャットボット", "AIチャットボット"),
    "chatbot": ("チャットボット", "AIチャットボット"),
    "ai_search": ("AI検索", "AIチャットボット"),
    "ai_demand_forecast": ("AI需要予測", "AIチャットボット"),
    "ocr": ("書類読み取り(OCR)", "AIチャットボット"),
    # multi-tenancy
    "multi_tenant": ("マルチテナント対応", "マルチテナント対応"),
    "multi_store": ("複数店舗管理", "マルチテナント対応"),
    "multi_company": ("グループ会社対応", "マルチテナント対応"),
    # migration
    "data_migration": ("データ移行", "データ移行ツール"),
    "legacy_migration": ("旧システムからの移行", "データ移行ツール"),
}
FEATURE_TO_CATEGORY = _FEATURE_TO_CATEGORY

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

# Industries the questionnaire offers (step 2), with Japanese labels. Unknown values price as
# "other" (factor 1.0).
INDUSTRIES: dict[str, str] = {
    "manufacturing": "製造業",
    "retail": "小売・EC",
    "healthcare": "医療・介護",
    "logistics": "物流・運送",
    "construction": "建設・不動産",
    "food_service": "飲食・サービス",
    "education": "教育・研修",
    "it_service": "IT・情報サービス",
    "finance": "金融・保険",
    "professional_service": "士業・コンサルティング",
    "other": "その他",
}

# §5.6: implementation is 65 % of the whole (要件定義10 / 設計10 / 実装65 / テスト10 / 導入5).
IMPLEMENTATION_SHARE = Decimal("0.65")
HYBRID_FACTOR = Decimal("0.6")
PRICE_UNIT_JPY = Decimal("1000")

# --- §5.7 budget upper limits in JPY (None: no upper limit; missing key: not checked) -------
_BUDGET_UPPER: dict[str, int | None] = {
    "under_500k": 500_000,
    "500k_1m": 1_000_000,
    "1m_3m": 3_000_000,
    "3m_5m": 5_000_000,
    "5m_10m": 10_000_000,
    "10m_plus": None,
}
BUDGET_UPPER_LIMITS = _BUDGET_UPPER
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
    low, high = _BASE_PRICES.get(category, _BASE_PRICES[DEFAULT_CATEGORY])
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
    """Step 8 as a list of distinct feature values, in order. Accepts a list or "a,b,c"."""
    if step_8 is None:
        return []
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

    1. the fixed ``_FEATURE_TO_CATEGORY`` table (source "table");
    2. ``step_8_categories`` saved by the first AI call, if the category exists (source "ai");
    3. ``DEFAULT_CATEGORY`` (source "default").
    """
    if value in _FEATURE_TO_CATEGORY:
        label, category = _FEATURE_TO_CATEGORY[value]
        return label, category, "table"
    label = (ai_labels or {}).get(value) or value
    category = (ai_categories or {}).get(value)
    if isinstance(category, str) and category in _BASE_PRICES:
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
    if not isinstance(budget_value, str) or budget_value not in _BUDGET_UPPER:
        return {"status": "not_checked", "upper_limit": None, "ratio": None, "over_percent": None,
                "message": "ご予算が未定のため、予算との比較は行っていません。"}
    upper = _BUDGET_UPPER[budget_value]
    if upper is None or total_hybrid <= upper:
        return {"status": "within_budget", "upper_limit": upper,
                "ratio": None if upper is None else round(total_hybrid / upper, 3), "over_percent": None,
                "message": "ご予算の範囲内に収まる見込みです。"}
    ratio = Decimal(total_hybrid) / Decimal(upper)
    over_percent = int(((ratio - 1) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    if ratio <= SLIGHTLY_OVER_RATIO:
        return {"status": "slightly_over", "upper_limit": upper, "ratio": float(round(ratio, 3)),
                "over_percent": over_percent,
                "message": f"ご予算を約{over_percent}%超過しています。機能の優先順位をご相談させてください。"}
    return {"status": "significantly_over", "upper_limit": upper, "ratio": float(round(ratio, 3)),
            "over_percent": over_percent,
            "message": f"ご予算を約{over_percent}%超過しています。フェーズを分けた段階的な開発をおすすめします。"}


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
    """The industry's default feature values (used when step 8 is empty)."""
    from hokan.estimate.catalogue import industry_features

    return [f["value"] for f in industry_features(industry)][:3]


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
