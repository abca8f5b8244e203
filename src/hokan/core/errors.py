"""The exception tree of hokan.

::

    HokanError
    ├─ FetchError ─ FetchTimeout · FetchBlocked(url, reason) · FetchStatusError(url, status_code)
    │               · FetchTooLarge(url, limit_bytes) · RobotsDisallowed(url)
    ├─ LLMError ─ LLMConfigError · LLMTransientError(provider, retry_after_s)
    │             · LLMDeadlineExceeded(deadline_s, attempts) (a LLMTransientError)
    │             · LLMRequestError(provider, status_code) · LLMOutputError(provider, schema_name, raw_output)
    ├─ BudgetExceeded(scope, limit, spent, ledger_scope)
    ├─ AlreadyPaid(key, status)
    ├─ RateLimited(key, retry_after_s)
    ├─ InputError(source, row, field, reason)
    ├─ DocumentError(source) ─ DocumentTooLarge(limit, maximum, actual) · DocumentUnreadable(reason)
    │                        · DocumentTimeout(seconds) · OcrUnavailable(engine, reason)
    ├─ ChunkLost(job_id, chunk_id, reason)
    ├─ PipelineError(stage, item)
    └─ InvalidValue(field, label, raw, reason)   also a ValueError

Whether an error is retried depends on its type (``LLMTransientError``, ``FetchTimeout``),
never on its message. Errors from libraries are translated at the boundary and chained
(``raise X(...) from exc``).
"""

from __future__ import annotations


class HokanError(Exception):
    """Base class of every error hokan raises on purpose."""


# --- fetching -----------------------------------------------------------------------------
class FetchError(HokanError):
    """A URL could not be fetched. ``url`` is the URL asked for (or the redirect target)."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class FetchTimeout(FetchError):
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


class LLMTransientError(LLMError):
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


class RateLimited(HokanError):
    """A shared rate limit (``hokan.core.ratelimit``) admits no request within the allowed wait.

    key: the limit's name (e.g. "llm:perplexity"); retry_after_s: seconds until a slot frees.
    """

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
