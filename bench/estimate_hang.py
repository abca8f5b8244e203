"""The hang test of issue 9 §1, for real: ``hokan serve`` (gunicorn, 2 workers, --timeout 120)
with the DEFAULT estimate settings (LLM_TIMEOUT=45, LLM_MAX_RETRIES=3, ESTIMATE_LLM_DEADLINE_S=90)
against a fake Gemini on 127.0.0.1 that accepts every request and never answers.

Times, with curl, ``POST /step`` (step 7 with the answers of steps 1-6) and ``POST /generate``:
before the fix both returned an HTML 500 after 120.9 s (gunicorn killed the worker). Prints
status, content type, seconds and what was stored, and a JSON line at the end.

    .venv/bin/python bench/estimate_hang.py            # about 3 minutes (two 90 s deadlines)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import no_network  # noqa: E402
from estimate_live import ANSWERS, hokan_serve, new_session, server_env  # noqa: E402

from tests.fakes.gemini_server import FakeGeminiServer, GeminiReply  # noqa: E402


def curl(url: str, payload: dict) -> dict:
    """POST ``payload`` with curl; status, content type, total seconds and the body."""
    out = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code} %{time_total} %{content_type}",
                          "-H", "Content-Type: application/json", "--data-binary", json.dumps(payload), url],
                         capture_output=True, text=True, timeout=300, check=False).stdout
    body, _, meta = out.rpartition("\n")
    status, seconds, content_type = (meta.split(" ", 2) + ["", ""])[:3]
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = body[:200]
    return {"status": int(status or 0), "seconds": float(seconds or 0), "content_type": content_type, "body": parsed}


def main() -> None:
    no_network()  # this process talks to 127.0.0.1 only (the servers' settings point there too)
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed")
    folder = Path(tempfile.mkdtemp(prefix="hokan-hang-"))
    with FakeGeminiServer(api_key="gemini-test-key", responder=lambda body: GeminiReply.hang()) as gemini:
        env = server_env(folder, LLM_PROVIDER="gemini", GEMINI_API_KEY="gemini-test-key",
                         GEMINI_BASE_URL=gemini.base_url, ESTIMATE_FOLLOWUPS="off")
        with hokan_serve(env, folder / "serve.log") as (url, _pid), httpx.Client(timeout=30) as client:
            session_id = new_session(client, url)
            steps_1_6 = {k: v for k, v in ANSWERS.items() if k in {"1", "2", "3", "4", "5", "6"}}
            step7 = curl(f"{url}/api/v1/estimate/step",
                         {"session_id": session_id, "step_number": 7, "value": "new", "answers": steps_1_6})
            stored = client.get(f"{url}/api/v1/estimate/session/{session_id}").json()
            requests_step7 = len(gemini.requests)
            started = time.monotonic()
            generate = curl(f"{url}/api/v1/estimate/generate", {"session_id": session_id, "answers": ANSWERS})
            result = client.get(f"{url}/api/v1/estimate/result/{session_id}").json()
    report = {
        "step7": {k: step7[k] for k in ("status", "seconds", "content_type")},
        "step7_features": len((step7["body"] or {}).get("step8_features") or []) if isinstance(step7["body"], dict) else 0,
        "step7_answers_stored": sorted(stored.get("answers", {})),
        "step7_gemini_requests": requests_step7,
        "generate": {k: generate[k] for k in ("status", "seconds", "content_type")},
        "generate_status": generate["body"].get("status") if isinstance(generate["body"], dict) else None,
        "generate_gemini_requests": len(gemini.requests) - requests_step7,
        "result_status": result.get("status"),
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(f"step 7:   HTTP {step7['status']} {step7['content_type']} in {step7['seconds']:.1f} s, "
          f"{report['step7_features']} features, answers stored: {', '.join(report['step7_answers_stored'])}, "
          f"{requests_step7} request(s) reached Gemini")
    print(f"generate: HTTP {generate['status']} {generate['content_type']} in {generate['seconds']:.1f} s, "
          f"estimate {report['generate_status']}, {report['generate_gemini_requests']} request(s) reached Gemini; "
          f"GET result: {report['result_status']}")
    print(json.dumps(report, ensure_ascii=False))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
