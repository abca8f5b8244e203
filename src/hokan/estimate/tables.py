"""The fixed tables of the estimate (design document 004 §5.2, §5.3, §5.7, step 2 and §6.6).

Pure data, shared by the price engine (``pricing``), the fallback texts (``catalogue``), the
answer validation (``answers``) and the LLM output validation (``validation``), so that none of
them imports another for its tables. Amounts in JPY.
"""

from __future__ import annotations

# --- §5.2 base price table: category -> (min JPY, max JPY) ---------------------------------
BASE_PRICES: dict[str, tuple[int, int]] = {
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
DEFAULT_CATEGORY = "シンプルなCRUD管理画面"

# --- §5.3 feature value -> (Japanese label, category); the fixed table (80+ entries) ----------
FEATURE_TO_CATEGORY: dict[str, tuple[str, str]] = {
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

# --- step 2: the industries the questionnaire offers, with Japanese labels. Unknown values price
# as "other" (factor 1.0).
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


# --- §5.7 budget upper limits in JPY (None: no upper limit; missing key: not checked) -------
BUDGET_UPPER_LIMITS: dict[str, int | None] = {
    "under_500k": 500_000,
    "500k_1m": 1_000_000,
    "1m_3m": 3_000_000,
    "3m_5m": 5_000_000,
    "5m_10m": 10_000_000,
    "10m_plus": None,
}

# --- industry -> its 6 default step-8 feature values (§6.6 fallback lists; the price engine
# takes the first 3 when step 8 is empty). Every value is a key of FEATURE_TO_CATEGORY. ---------
INDUSTRY_FEATURE_VALUES: dict[str, tuple[str, ...]] = {
    "manufacturing": ("production_planning", "inventory_management", "order_management",
                      "quality_control", "production_dashboard", "report_output"),
    "retail": ("inventory_management", "sales_management", "customer_management",
               "ec_integration", "point_card", "sales_analysis"),
    "healthcare": ("reservation_management", "patient_management", "medical_record",
                   "medical_billing", "reminder", "shift_management"),
    "logistics": ("shipping_management", "delivery_schedule", "gps_tracking",
                  "vehicle_management", "warehouse_management", "delivery_tracking"),
    "construction": ("construction_management", "construction_schedule", "photo_management",
                     "estimate_creation", "materials_management", "daily_report"),
    "food_service": ("reservation_management", "mobile_order", "shift_management",
                     "inventory_management", "sales_analysis", "customer_management"),
    "education": ("student_management", "course_management", "reservation_management",
                  "learning_analytics", "online_payment", "email_notification"),
    "generic": ("customer_management", "task_management", "dashboard",
                "approval_workflow", "csv_import", "notification"),
}
