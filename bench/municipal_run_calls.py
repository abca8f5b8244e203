"""What one municipality run costs in calls (issue 10: "what one municipality run costs in calls").

    .venv/bin/python bench/municipal_run_calls.py [--services a,b,...]

Runs the municipal job (core.jobs, one chunk per service) for 音威子府村 over the saved pages of
``$HOKAN_SHARED_DATA/municipal/otoineppu_pages_md`` (snapshot fetcher + the snapshot BM25 index),
with the LLM a local fake OpenAI server (tests/fakes/openai_server.py) that answers no value — the
dearest case: every page read that still has missing variables after the rules costs one
extraction call. Counts the requests the fake received, the searches and pages, then runs the
same job again over the unchanged pages (the query cache and the page-text hash: 0 calls).
No traffic leaves the machine (``_common.no_network``). A count, not a speed: no baseline ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import no_network, setup_django, shared_data, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", default="", help="service keys (default: every catalogue service)")
    args = parser.parse_args()
    no_network()
    folder = Path(tempfile.mkdtemp(prefix="hokan-municipal-calls-"))
    from tests.fakes.openai_server import FakeOpenAIServer

    with FakeOpenAIServer(api_key="bench-key") as llm:
        os.environ.update(HOKAN_FETCH_ALLOW_HOSTS="127.0.0.1", HOKAN_MUNICIPAL_SERVICE_DELAY_S="0",
                          SEARCH_PROVIDER="snapshot", HOKAN_LLM_RATE_LIMIT_PER_MIN="100000")
        setup_django(folder)
        from django.conf import settings

        from hokan.municipal import flow
        from hokan.municipal.demo import build_snapshot
        from hokan.municipal.importer import import_municipalities
        from hokan.municipal.models import Draft, Municipality, Service
        from hokan.municipal.seed import sync_catalogue

        settings.HOKAN_LLM_PROVIDER, settings.OPENAI_API_KEY = "openai", "bench-key"
        settings.HOKAN_LLM_BASE_URL, settings.HOKAN_LLM_MODEL = llm.base_url, "gpt-4o-mini"
        snapshot = build_snapshot(shared_data(), folder / "snapshot")
        settings.HOKAN_SNAPSHOT_DIR, settings.SEARCH_SNAPSHOT_DIRS = str(snapshot), [str(snapshot)]
        import_municipalities(shared_data() / "municipal" / "localgovjp")
        sync_catalogue()
        municipality = Municipality.objects.get(lgcode="014702")
        services = list(Service.objects.order_by("key"))
        if args.services:
            services = [s for s in services if s.key in args.services.split(",")]
        rows = []
        for label in ("first run", "again, pages unchanged"):
            before = len(llm.requests)
            run = flow.start_run(municipality, services)
            progress = flow.execute(run, context=lambda job, chunk: flow.context_from_settings(sleep=lambda s: None))
            totals = progress.totals
            rows.append((label, f"{progress.done}/{progress.total}", len(llm.requests) - before,
                         totals.get("llm_calls", 0), totals.get("searches", 0), totals.get("pages", 0),
                         sum(d.filled_count for d in Draft.objects.filter(municipality=municipality))))
        print(f"音威子府村, {len(services)} services, HOKAN_MUNICIPAL_PAGES_PER_SERVICE="
              f"{settings.HOKAN_MUNICIPAL_PAGES_PER_SERVICE}, fake LLM answering no value")
        print(table(("run", "services", "LLM requests (fake)", "llm_calls (job)", "searches", "pages", "values"),
                    rows))


if __name__ == "__main__":
    main()
