"""Fixed Japanese texts of the estimate: industry feature lists and fallback templates (§6.6).

Pure data and string formatting (no Django). Used by the FallbackAdapter when no LLM is
configured or every attempt failed. The default feature values per industry (also used by
the price engine when step 8 is empty) are in ``tables.INDUSTRY_FEATURE_VALUES``.
Seven industries have their own lists and texts; every other industry uses the generic one.
"""

from __future__ import annotations

from typing import Any

from hokan.estimate.pricing import format_price
from hokan.estimate.tables import FEATURE_TO_CATEGORY, INDUSTRIES, INDUSTRY_FEATURE_VALUES

_INDUSTRY_TEXTS: dict[str, dict[str, str]] = {
    "manufacturing": {
        "project": "生産管理システム",
        "summary": "生産計画・在庫・受発注の情報が部署ごとに分かれていると、確認や転記に多くの時間がかかり、"
                   "欠品や納期遅れの原因にもなります。本システムでは製造現場と管理部門が同じ情報をリアルタイムに共有できる"
                   "仕組みを整え、手作業による集計や二重入力を減らして、安定した生産体制づくりを支援いたします。",
    },
    "retail": {
        "project": "店舗・販売管理システム",
        "summary": "店舗とネットの在庫や売上を別々に管理していると、欠品や過剰在庫が起こりやすく、集計にも手間がかかります。"
                   "本システムでは在庫・売上・顧客の情報を一元化し、日々の販売状況をすぐに把握できる環境を整えることで、"
                   "販売機会の損失を防ぎ、リピーターづくりにつなげることを目指します。",
    },
    "healthcare": {
        "project": "予約・患者管理システム",
        "summary": "電話での予約受付や紙の記録は、スタッフの負担が大きく、患者様をお待たせする原因にもなりがちです。"
                   "本システムでは予約から受付・記録・会計までの情報をつなぎ、個人情報の取り扱いに配慮した安全な環境で、"
                   "スタッフの事務負担を減らし、患者様と向き合う時間を増やすことを目指します。",
    },
    "logistics": {
        "project": "配送・運行管理システム",
        "summary": "配送予定や車両の状況を電話やホワイトボードで共有していると、急な変更への対応が遅れ、"
                   "ドライバーと事務所の双方に負担がかかります。本システムでは出荷から配送完了までの状況を一つの画面で"
                   "確認できるようにし、配車の判断を早め、誤配や遅延の防止につなげることを目指します。",
    },
    "construction": {
        "project": "工事・現場管理システム",
        "summary": "工事ごとの工程や写真、日報が個人のPCや紙に分散していると、現場と事務所の情報共有に時間がかかります。"
                   "本システムでは案件ごとの情報を一か所に集約し、現場からも確認・登録できる仕組みを整えることで、"
                   "報告や書類作成の手間を減らし、工程の遅れにいち早く気づける体制づくりを支援いたします。",
    },
    "food_service": {
        "project": "店舗運営支援システム",
        "summary": "予約・シフト・仕入れを別々の方法で管理していると、店長やスタッフの事務作業が増え、"
                   "お客様への対応に時間を割きにくくなります。本システムでは店舗運営に必要な情報をまとめて管理できるようにし、"
                   "日々の作業を効率化しながら、売上の傾向をもとにした無理のない店舗運営を支援いたします。",
    },
    "education": {
        "project": "受講管理システム",
        "summary": "受講者の申込や出欠、受講料の管理を表計算ソフトやメールで行っていると、確認漏れや連絡の行き違いが"
                   "起こりやすくなります。本システムでは申込から受講状況の把握までを一元化し、受講者への案内を自動化することで、"
                   "運営の手間を減らし、学びの質の向上に注力できる環境づくりを支援いたします。",
    },
    "generic": {
        "project": "業務管理システム",
        "summary": "日々の業務情報が表計算ソフトや紙、メールに分散していると、確認や集計に時間がかかり、"
                   "担当者によって対応にばらつきが出やすくなります。本システムでは必要な情報を一か所に集約し、"
                   "誰でも同じ手順で業務を進められる仕組みを整えることで、作業時間の短縮とミスの削減を目指します。",
    },
}

# category -> a one-sentence description of what the feature does (fallback "detail").
CATEGORY_DETAILS: dict[str, str] = {
    "シンプルなCRUD管理画面": "必要な情報の登録・編集・一覧表示を、権限に応じて安全に行える管理画面です。",
    "ダッシュボード・分析": "日々のデータを自動で集計し、グラフや一覧でひと目で状況を把握できるようにします。",
    "カレンダー・スケジュール": "予定や予約をカレンダー上で管理し、重複や漏れを防ぎます。",
    "帳票・レポート出力": "必要な帳票をテンプレートに沿って自動作成し、PDFなどで出力できるようにします。",
    "検索・フィルタリング": "条件を組み合わせて、目的の情報をすばやく探し出せるようにします。",
    "承認ワークフロー": "申請から承認までの流れをシステム上で完結させ、進捗を見える化します。",
    "在庫・受発注管理": "在庫数と受発注の状況を連動して管理し、欠品や過剰在庫を防ぎます。",
    "請求・売上管理": "売上の記録から請求書の発行、入金の確認までを一元管理します。",
    "顧客管理(CRM)": "お客様の情報や対応履歴をまとめて管理し、担当者間で共有できるようにします。",
    "通知・アラート": "期限や状況の変化をメールなどで自動的にお知らせし、対応漏れを防ぎます。",
    "外部API連携(単純)": "お使いの外部サービスとデータを連携し、手作業での転記をなくします。",
    "外部API連携(複雑)": "基幹システムや外部サービスと双方向にデータを連携し、情報の整合性を保ちます。",
    "決済連携": "オンライン決済サービスと連携し、安全な支払い手続きを実現します。",
    "CSV/データインポート": "既存のCSVやExcelのデータを取り込み・出力できるようにします。",
    "AIチャットボット": "AIを活用して、問い合わせへの一次対応や情報検索を自動化します。",
    "マルチテナント対応": "複数の拠点や組織ごとにデータを分けて、安全に運用できるようにします。",
    "データ移行ツール": "現在お使いのシステムや表計算ソフトのデータを、新しいシステムへ正確に移行します。",
}

DEVELOPMENT_MODEL_EXPLANATION = (
    "「標準開発」は要件定義から設計・開発・テスト・導入までを当社がすべて担当する進め方です。"
    "「ハイブリッド開発」はAIを活用した開発手法と、お客様にもテストや運用準備の一部をご協力いただく体制を組み合わせることで、"
    "品質を保ちながら費用を約4割抑える進め方です。"
)

BASE_AGENDA = [
    "現在の業務の流れと、システム化する範囲の確認",
    "各機能の優先順位と初期リリースの範囲",
    "ご利用になる方の権限と運用体制",
    "セキュリティ要件（アクセス権限・データの保管方法）の確認",
    "導入スケジュールと移行方法",
]


# A base agenda item is left out when a hint already covers its topic.
_AGENDA_TOPICS = {BASE_AGENDA[1]: ("優先順位", "フェーズ"), BASE_AGENDA[3]: ("セキュリティ",)}


def _agenda(hints: list[str]) -> list[str]:
    """3-5 discussion items: the engine's hints first, then the base items on other topics."""
    items = list(dict.fromkeys(hints))[:3]
    for base in BASE_AGENDA:
        if len(items) >= 5:
            break
        if any(word in hint for word in _AGENDA_TOPICS.get(base, ()) for hint in items):
            continue
        items.append(base)
    return items


def _man(price_jpy: int) -> int:
    """Whole 万円 as ``format_price`` shows them (ceil), so the shown difference adds up."""
    return -(-int(price_jpy) // 10000)


def industry_key(industry: Any) -> str:
    """The template key for an industry value: one of the seven, else "generic"."""
    return industry if isinstance(industry, str) and industry in INDUSTRY_FEATURE_VALUES else "generic"


def industry_features(industry: Any) -> list[dict[str, str]]:
    """The default step-8 feature list for an industry (6 items of value/label/category)."""
    return [{"value": v, "label": FEATURE_TO_CATEGORY[v][0], "category": FEATURE_TO_CATEGORY[v][1]}
            for v in INDUSTRY_FEATURE_VALUES[industry_key(industry)]]


def industry_label(industry: Any) -> str:
    """Japanese label of an industry value ("製造業"), or "その他"."""
    return INDUSTRIES.get(industry, "その他") if isinstance(industry, str) else "その他"


def fallback_estimate(user_input: dict[str, Any], calculated: dict[str, Any]) -> dict[str, Any]:
    """The template estimate of §6.6 with the price engine's numbers (valid for §7.2 with
    ``feature_bounds``): one feature per priced feature, in the engine's order."""
    key = industry_key(user_input.get("step_2"))
    texts = _INDUSTRY_TEXTS[key]
    features = []
    used_names: set[str] = set()
    used_details: set[str] = set()
    for calc in calculated["features"]:
        name = calc.get("label") or calc["category"]
        if calc.get("category_source") == "default" and name == calc.get("value"):
            name = f"ご要望の機能（{name}）"  # a value we do not know: say so instead of guessing
        if name in used_names:
            name = f"{name}（{len(used_names) + 1}）"
        used_names.add(name)
        detail = CATEGORY_DETAILS.get(calc["category"], "業務の効率化を支援する機能です。")
        if detail in used_details and calc.get("category_source") != "default":
            detail = f"{calc['label']}の業務に合わせて、{detail}"  # two features of one category: tell them apart
        used_details.add(detail)
        features.append({
            "name": name,
            "detail": detail,
            "standard_price": calc["standard_price"],
            "hybrid_price": calc["hybrid_price"],
        })
    agenda = _agenda(calculated.get("discussion_hints", []))
    total_standard = sum(f["standard_price"] for f in features)
    total_hybrid = sum(f["hybrid_price"] for f in features)
    confidence = calculated.get("confidence", {})
    return {
        "project_name": texts["project"],
        "summary": texts["summary"],
        "development_model_explanation": DEVELOPMENT_MODEL_EXPLANATION,
        "features": features,
        "discussion_agenda": agenda,
        "total_cost": {
            "standard": total_standard,
            "hybrid": total_hybrid,
            "message": (f"標準開発では約{format_price(total_standard)}、ハイブリッド開発では約{format_price(total_hybrid)}"
                        f"となり、約{_man(total_standard) - _man(total_hybrid)}万円のコスト削減が見込めます。"),
        },
        "confidence_note": confidence.get("note", "ご回答内容をもとにした概算です。詳細はお打ち合わせで精査いたします。"),
    }
