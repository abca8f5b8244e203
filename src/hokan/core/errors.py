"""The exception tree of hokan: every error hokan raises on purpose is a ``HokanError``.

Each app keeps its errors beside its code (``registry/errors.py``, ``estimate/errors.py``, …);
every one of them is drawn here, grouped by app. A line is ``Class(attributes)``, then
``[also X]`` for a second base, then the module that defines it (under ``hokan.``).
``tests/core/test_errors.py`` checks this tree against the code, both ways.

core::

    HokanError                                                         core.errors
    ├── TransientError(retry_after_s)                                  core.errors
    │   └── RateLimited(key, retry_after_s)                            core.errors
    ├── FetchError(url)                                                core.errors
    │   ├── FetchTimeout  [also TransientError]                        core.errors
    │   ├── FetchBlocked(reason)                                       core.errors
    │   ├── FetchTooLarge(limit_bytes)                                 core.errors
    │   ├── FetchStatusError(status_code)                              core.errors
    │   └── RobotsDisallowed                                           core.errors
    ├── LLMError(provider)                                             core.errors
    │   ├── LLMConfigError                                             core.errors
    │   ├── LLMTransientError(retry_after_s, status_code)  [also TransientError]  core.errors
    │   │   └── LLMDeadlineExceeded(deadline_s, attempts)              core.errors
    │   ├── LLMRequestError(status_code)                               core.errors
    │   ├── LLMOutputError(schema_name, raw_output, usage)             core.errors
    │   └── GeminiFileNotActive(file_name, state, reason)              core.llm.gemini_files
    ├── BudgetExceeded(scope, limit, spent, ledger_scope)              core.errors
    ├── AlreadyPaid(key, status)                                       core.errors
    ├── InputError(source, row, field, reason)                         core.errors
    ├── InvalidValue(field, label, raw, reason)  [also ValueError]     core.errors
    ├── ChunkLost(job_id, chunk_id, reason)                            core.errors
    ├── PipelineError(stage, item)                                     core.errors
    ├── DocumentError(source)                                          core.errors
    │   ├── DocumentTooLarge(limit, maximum, actual)                   core.errors
    │   ├── DocumentUnreadable(reason)                                 core.errors
    │   ├── DocumentTimeout(seconds)                                   core.errors
    │   └── OcrUnavailable(engine, reason)                             core.errors
    ├── SearchError(provider)                                          core.errors
    │   ├── SearchConfigError                                          core.errors
    │   ├── SearchUnavailable(retry_after_s, status_code)  [also TransientError]  core.errors
    │   ├── SearchRequestError(status_code)                            core.errors
    │   └── SearchFailed(failures)                                     core.errors
    ├── ApiKeyMissing                                                  core.api_keys
    └── ApiKeyRejected                                                 core.api_keys

registry::

    HokanError
    ├── RegistryError(source)                                          registry.errors
    │   ├── RegistryConfigError                                        registry.errors
    │   ├── RegistryAuthError(status_code)                             registry.errors
    │   ├── RegistryRateLimited(retry_after_s)  [also TransientError]  registry.errors
    │   ├── RegistryUnavailable(status_code)  [also TransientError]    registry.errors
    │   └── RegistryRequestError(status_code)                          registry.errors
    └── CellError(header, reason)                                      registry.cells

leads::

    HokanError
    ├── RunStop(kind, message, cause, company)                         leads.enrich
    ├── AlreadyEnriching(run)                                          leads.refresh
    ├── FieldProblem(field, message)                                   leads.edit
    ├── EditInvalid(problems)                                          leads.edit
    └── Conflict                                                       leads.api

scoring::

    HokanError
    ├── CellsNotScored                                                 scoring.tasks
    ├── VideoError(source, reason)                                     scoring.video
    │   └── VideoUnavailable(retry_after_s)  [also TransientError]     scoring.video
    ├── SheetsError(url)                                               scoring.sheets
    │   ├── SheetsConfigError                                          scoring.sheets
    │   ├── SheetsAccessError(status_code)                             scoring.sheets
    │   ├── SheetsUnavailable(retry_after_s)  [also TransientError]    scoring.sheets
    │   └── SheetsWriteError(rows, status_code)                        scoring.sheets
    └── BatchError(batch_key, batch_id)                                scoring.batch
        ├── BatchFailed(status)                                        scoring.batch
        ├── BatchUnknown                                               scoring.batch
        └── BatchTimeout                                               scoring.batch

estimate::

    HokanError
    ├── SessionNotFound(session_id)                                    estimate.errors
    ├── LLMAttemptsExhausted(call, problems, deadline_exceeded)        estimate.adapters
    ├── PdfError                                                       estimate.pdf
    ├── FollowupsIncomplete                                            estimate.followup_jobs
    ├── MailError(status_code)                                         estimate.mail
    │   ├── MailNotConfigured                                          estimate.mail
    │   └── MailUnavailable(retry_after_s)  [also TransientError]      estimate.mail
    └── NotionError(status_code)                                       estimate.notion
        └── NotionUnavailable(retry_after_s)  [also TransientError]    estimate.notion
    LLMOutputError
    └── InvalidAnswer                                                  estimate.adapters

municipal::

    HokanError
    ├── RunConflict                                                    municipal.api
    ├── DocumentFetchFailed                                            municipal.api
    ├── MunicipalNotFound                                              municipal.api
    └── CrawlError(url)                                                municipal.crawler

knowledge::

    HokanError
    └── KnowledgeError                                                 knowledge.errors
        ├── AnalysisInvalid(problems, source)                          knowledge.errors
        ├── KnowledgeStoreUnavailable(reason)                          knowledge.errors
        ├── SnapshotError                                              knowledge.errors
        ├── UploadRefused(status, detail)                              knowledge.api
        └── BackfillError(source, reason)                              knowledge.backfill

Whether an error is retried depends on its type, never on its message: retry code names
``TransientError`` (a provider or server busy or down, a timeout, a shared limit used up; its
``retry_after_s`` is the wait asked for, or None), or one of its subclasses when only that
source is retried (``LLMTransientError`` in the LLM clients). Errors from libraries are
translated at the boundary and chained (``raise X(...) from exc``). Misuse of an API by our own
code (a bad argument, an unknown setting value at start-up) raises the builtin ``ValueError`` /
``TypeError`` or Django's ``ImproperlyConfigured``, not a ``HokanError``, as httpx does.
"""

from __future__ import annotations


class HokanError(Exception):
    """Base class of every error hokan raises on purpose."""


class TransientError(HokanError):
    """Worth trying again later: a provider or server is busy or down, a connection timed out,
    a shared limit is used up. The one type retry code names (``except TransientError``).

    retry_after_s: seconds the other side (Retry-After) or our shared limiter asked us to wait,
    or None when nobody said (the caller's backoff decides). Set by the subclasses.
    """

    retry_after_s: float | None = None


# --- fetching -----------------------------------------------------------------------------
class FetchError(HokanError):
    """A URL could not be fetched. ``url`` is the URL asked for (or the redirect target)."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class FetchTimeout(FetchError, TransientError):
    """Connect or read timed out; worth retrying later."""


class FetchBlocked(FetchError):
    """Refused by the SSRF guard before any connection: ``reason`` says why (scheme, address)."""

    def __init__(self, message: str, *, url: str, reason: str) -> None:
        super().__init__(message, url=url)
        self.reason = reason


class RobotsDisallowed(FetchError):
    """robots.txt of the host disallows our user agent for this URL."""


class FetchTooLarge(FetchError):
    """The body exceeded ``HOKAN_FETCH_MAX_BYTES``."""

    def __init__(self, message: str, *, url: str, limit_bytes: int) -> None:
        super().__init__(message, url=url)
        self.limit_bytes = limit_bytes


class FetchStatusError(FetchError):
    """The server answered with a 4xx/5xx status."""

    def __init__(self, message: str, *, url: str, status_code: int) -> None:
        super().__init__(message, url=url)
        self.status_code = status_code


# --- LLM ----------------------------------------------------------------------------------
class LLMError(HokanError):
    """A call to an LLM provider failed."""

    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message)
        self.provider = provider


class LLMConfigError(LLMError):
    """Missing key, unknown provider or model: never retried."""


class LLMTransientError(LLMError, TransientError):
    """429, 5xx, timeout or connection error: retried by exactly one layer.

    retry_after_s: seconds the provider asked us to wait (Retry-After), or None.
    status_code: HTTP status, or None for timeouts and connection errors.
    """

    def __init__(
        self, message: str, *, provider: str, retry_after_s: float | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after_s = retry_after_s
        self.status_code = status_code


class LLMDeadlineExceeded(LLMTransientError):
    """The call's overall deadline (retries and waits included) passed before an answer.

    deadline_s: the deadline, seconds after the call started (None when given as an absolute
    time only); attempts: requests sent. Request paths use it to answer with their fallback
    instead of holding the web worker; raised by ``hokan.core.llm.retry.RetryPolicy``.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        deadline_s: float | None = None,
        attempts: int = 0,
        retry_after_s: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, provider=provider, retry_after_s=retry_after_s, status_code=status_code)
        self.deadline_s = deadline_s
        self.attempts = attempts


class LLMRequestError(LLMError):
    """A 4xx other than 429: final for this record, never retried."""

    def __init__(self, message: str, *, provider: str, status_code: int) -> None:
        super().__init__(message, provider=provider)
        self.status_code = status_code


class LLMOutputError(LLMError):
    """The answer could not be parsed or repaired into a JSON object of the schema.

    usage: the ``hokan.core.llm.Usage`` of the call(s) that produced the unusable answer
    (the provider charged for them), or None when unknown. A budget wrapper commits it.
    """

    def __init__(
        self, message: str, *, provider: str, schema_name: str, raw_output: str, usage: object | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.schema_name = schema_name
        self.raw_output = raw_output
        self.usage = usage


# --- budget -------------------------------------------------------------------------------
class BudgetExceeded(HokanError):
    """A reservation would pass a limit. scope: "monthly_cost" | "monthly_calls" | "daily_records"
    (which limit); ledger_scope: whose budget (``hokan.core.budget.SCOPES``, e.g. "leads")."""

    def __init__(self, message: str, *, scope: str, limit: object, spent: object, ledger_scope: str = "leads") -> None:
        super().__init__(message)
        self.scope = scope
        self.limit = limit
        self.spent = spent
        self.ledger_scope = ledger_scope


class AlreadyPaid(HokanError):
    """The paid work ``key`` has a reservation this process did not make: it must not be paid again.

    status: the reservation's state — "committed" / "expired" (paid already, e.g. a retried or
    redelivered task reaching a lead done earlier today) or "reserved" (in flight in another
    process, or left open by a killed worker until ``settle_stale`` settles it at its estimate).
    """

    def __init__(self, message: str, *, key: str, status: str) -> None:
        super().__init__(message)
        self.key = key
        self.status = status


class RateLimited(TransientError):
    """A shared rate limit (``hokan.core.ratelimit``) admits no request within the allowed wait.

    key: the limit's name (e.g. "llm:perplexity"); retry_after_s: seconds until a slot frees.
    """

    retry_after_s: float

    def __init__(self, message: str, *, key: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.key = key
        self.retry_after_s = retry_after_s


# --- input --------------------------------------------------------------------------------
class InputError(HokanError):
    """Bad user input: names the file (source), the row number (1-based, header = 1), the field."""

    def __init__(self, reason: str, *, source: str = "", row: int | None = None, field: str = "") -> None:
        where = ", ".join(
            part for part in (source, f"{row}行目" if row is not None else "", f"列「{field}」" if field else "") if part
        )
        super().__init__(f"{where}: {reason}" if where else reason)
        self.source = source
        self.row = row
        self.field = field
        self.reason = reason


class InvalidValue(HokanError, ValueError):
    """A value is present but not valid for its field (``hokan.core.fields.clean``).

    field: the field's name (``capital``); label: its Japanese label (資本金); raw: the value as
    given (str of it); reason: Japanese, says what was expected and shows the value. The message
    is ``reason``. Also a ``ValueError``, so callers of the former validators keep working.
    """

    def __init__(self, reason: str, *, field: str = "", label: str = "", raw: str = "") -> None:
        super().__init__(reason)
        self.field = field
        self.label = label
        self.raw = raw
        self.reason = reason


# --- jobs and pipelines (hokan.core.jobs, hokan.core.pipeline) --------------------------------
class ChunkLost(HokanError):
    """This worker no longer holds the chunk: its result must not be stored.

    reason: "reclaimed" (the lease expired and another worker claimed it, or it was settled
    already), "interrupted" (the job was interrupted: put the chunk back and stop).
    job_id: the job's public id (str); chunk_id: the chunk's number in the job.
    """

    def __init__(self, message: str, *, job_id: str, chunk_id: int, reason: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.chunk_id = chunk_id
        self.reason = reason


class PipelineError(HokanError):
    """A stage (or the source, or the checkpoint) of a ``core.pipeline.Pipeline`` raised: the
    whole pipeline was stopped. The original exception is chained (``__cause__``).

    stage: the stage's name ("source" / "checkpoint" for those); item: a short repr of the
    item being processed (at most 200 characters), "" when none.
    """

    def __init__(self, message: str, *, stage: str, item: str = "") -> None:
        super().__init__(message)
        self.stage = stage
        self.item = item


# --- documents (hokan.core.documents) -------------------------------------------------------
class DocumentError(HokanError):
    """A document (PDF or image) could not be read. ``source``: its file name or URL as given
    by the caller; the message (Japanese, for the user) names it and says why."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class DocumentTooLarge(DocumentError):
    """A limit of ``hokan.core.documents`` was passed, checked before the content is decoded.

    limit: "bytes" | "pages" | "pixels" | "text" | "memory" (the setting
    ``HOKAN_DOCUMENTS_MAX_<LIMIT>``); maximum: the limit's value; actual: the document's value,
    or None when only "more than the maximum" is known (e.g. a PDF parser stopped at its memory cap).
    """

    def __init__(self, message: str, *, source: str, limit: str, maximum: int, actual: int | None) -> None:
        super().__init__(message, source=source)
        self.limit = limit
        self.maximum = maximum
        self.actual = actual


class DocumentUnreadable(DocumentError):
    """Not a format we read, truncated or corrupt, or encrypted. reason: a short English key
    ("format", "corrupt", "encrypted", "crashed") for code; the message says it in Japanese."""

    def __init__(self, message: str, *, source: str, reason: str) -> None:
        super().__init__(message, source=source)
        self.reason = reason


class DocumentTimeout(DocumentError):
    """Reading the document took longer than its time budget (``seconds``,
    ``HOKAN_DOCUMENTS_MAX_SECONDS``); the work was stopped, nothing was cached."""

    def __init__(self, message: str, *, source: str, seconds: float) -> None:
        super().__init__(message, source=source)
        self.seconds = seconds


class OcrUnavailable(DocumentError):
    """No configured OCR engine could run (``HOKAN_OCR_ENGINES``): ``engine`` is the last one
    tried, ``reason`` why (package or program missing, engine error)."""

    def __init__(self, message: str, *, source: str, engine: str, reason: str) -> None:
        super().__init__(message, source=source)
        self.engine = engine
        self.reason = reason


# --- web search (hokan.core.search) ---------------------------------------------------------
class SearchError(HokanError):
    """A web search (``hokan.core.search``) failed. provider: "brave" | "perplexity" | "google" |
    "snapshot" (or "auto" for the whole chain); the message (Japanese) names it and says why."""

    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message)
        self.provider = provider


class SearchConfigError(SearchError):
    """The provider cannot be used: key missing, unknown provider name, Google CSE past its
    2027-01-01 cut-off, snapshot folder unreadable. Never retried."""


class SearchUnavailable(SearchError, TransientError):
    """429, 5xx, timeout, connection error or an unreadable (non-JSON) answer: worth trying
    later or with the next provider. retry_after_s: the provider's Retry-After (seconds) or
    None; status_code: HTTP status, None for timeouts and connection errors."""

    def __init__(
        self, message: str, *, provider: str, retry_after_s: float | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after_s = retry_after_s
        self.status_code = status_code


class SearchRequestError(SearchError):
    """A 4xx other than 429 (401/403: the key was refused): final for this provider."""

    def __init__(self, message: str, *, provider: str, status_code: int) -> None:
        super().__init__(message, provider=provider)
        self.status_code = status_code


class SearchFailed(SearchError):
    """Every provider of the chain failed or found nothing. failures: [(provider, reason)] in
    the order tried (reason: Japanese; "0件" when it answered with no result); the message
    lists them all."""

    def __init__(self, message: str, *, provider: str = "auto", failures: list[tuple[str, str]]) -> None:
        super().__init__(message, provider=provider)
        self.failures = failures
