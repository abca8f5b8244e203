"""Backfill the knowledge base with past analyses (design document 001 §4.1; issue 12 §6).

``hokan knowledge backfill --source local --dir DIR | --source azure --container C | --source api --url URL``
(the document's ``scripts/backfill_knowledge_base.py``). Each source yields analysis JSON
documents page by page (``HOKAN_KNOWLEDGE_BACKFILL_PAGE_SIZE``); each document holds one
analysis, a list of them, or ``{"analyses": [...]}``; each analysis goes through
``hokan.knowledge.service.store_analysis`` — idempotent by video id, so running the backfill
again stores nothing new (``unchanged``) and a re-analysed video replaces its phases.

A bad document (not JSON, too large, an analysis failing validation) is reported with its name
and reason and skipped; the others are stored. A source that cannot be read at all (missing
folder, unknown container, refused URL, HTTP error) raises ``BackfillError``.

- ``local``: ``*.json`` files under DIR (recursively, sorted by path); symlinks leaving DIR are
  skipped.
- ``azure``: blobs of container C (``--prefix`` to narrow; ``*.json`` only) through
  ``azure-storage-blob``, listed ``results_per_page`` at a time with continuation tokens.
  Credentials: ``AZURE_STORAGE_CONNECTION_STRING`` (secret, env only) or
  ``AZURE_STORAGE_ACCOUNT_URL`` (+ ``DefaultAzureCredential`` if azure-identity is installed).
  **Outbound traffic.** The Azure SDK sends through its own ``requests`` transport, not our
  guarded httpx client (azure-core has no httpx transport, and writing one would be a second
  HTTP stack). So the blob client may talk to *one* host only: the account URL is checked by
  ``core.web.ssrf.check_url`` before the client is made (a private or loopback address is
  refused unless listed in ``HOKAN_FETCH_ALLOW_HOSTS``, as for every fetch), redirects are off,
  and the SDK's transport is a ``RequestsTransport`` subclass (``_pinned_transport``, passed as
  the SDK's public ``transport=`` argument) that refuses any request to another scheme, host or
  port and checks the host's addresses again before every request, retries included. What
  this does not cover is a DNS answer that changes between that check and requests' own
  connect (our httpx transport checks at connect time); the account URL is the operator's
  setting, never user input, which is why that is acceptable here.
- ``api``: ``GET URL`` through ``core.web``'s guarded client (SSRF at connect time, size cap,
  timeouts); the answer is a list of analyses or ``{"items" | "results" | "analyses" | "data":
  [...], "next": URL | null}``; ``next`` pages are followed on the same origin only (the bearer
  token ``HOKAN_KNOWLEDGE_BACKFILL_API_TOKEN`` is never sent elsewhere), at most ``MAX_PAGES``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from hokan.knowledge.errors import KnowledgeError

MAX_PAGES = 10_000
LIST_KEYS = ("analyses", "items", "results", "data")


class BackfillError(KnowledgeError):
    """A backfill source cannot be read at all. source: "local" | "azure" | "api"; reason: Japanese."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"バックフィル（{source}）: {reason}")


@dataclass(frozen=True)
class Document:
    """One document of a source: its name (path, blob name, URL#n) and a reader of its bytes."""

    name: str
    size: int | None
    read: Callable[[], bytes]


@dataclass
class BackfillReport:
    """What one backfill did. documents: read; created / updated / unchanged: analyses;
    failed: (document name, Japanese reason) of what was skipped; index_errors: analyses stored
    but not indexed in Qdrant (``hokan knowledge reindex`` repairs them)."""

    documents: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    index_errors: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


# --- sources -----------------------------------------------------------------------------------
def local_pages(folder: Path, *, page_size: int) -> Iterator[list[Document]]:
    """Pages of the ``*.json`` files under ``folder``. Raises BackfillError when it is no folder."""
    root = Path(folder)
    if not root.is_dir():
        raise BackfillError("local", f"フォルダがありません: {root}")
    resolved = root.resolve()
    files = []
    for path in sorted(root.rglob("*.json")):
        if path.is_file() and path.resolve().is_relative_to(resolved):
            files.append(path)
    for start in range(0, len(files), page_size):
        yield [Document(str(p), p.stat().st_size, p.read_bytes) for p in files[start:start + page_size]]


def _pinned_transport(account_url: str) -> Any:
    """A ``RequestsTransport`` that sends only to ``account_url``'s scheme, host and port, and checks
    the host's addresses again (``core.web.ssrf.check_url``) before every request, retries included."""
    from azure.core.pipeline.transport import RequestsTransport

    from hokan.core.errors import FetchBlocked
    from hokan.core.web.http import default_allow_hosts
    from hokan.core.web.ssrf import check_url

    parts = urlsplit(account_url)
    origin = (parts.scheme, parts.hostname, parts.port)

    class AccountHostOnly(RequestsTransport):  # type: ignore[misc]
        def send(self, request: Any, **kwargs: Any) -> Any:
            url = request.url
            there = urlsplit(url)
            if (there.scheme, there.hostname, there.port) != origin:
                raise FetchBlocked(f"Azure Blob: 設定されたアカウント以外への接続を止めました（{there.scheme}://{there.netloc}）",
                                   url=url, reason="host")  # fmt: skip
            check_url(url, allow_hosts=default_allow_hosts())
            return super().send(request, **kwargs)

    return AccountHostOnly(connection_timeout=20, read_timeout=60)


def container_client(container: str, *, connection_string: str | None = None, account_url: str | None = None) -> Any:
    """The ``ContainerClient`` of ``container``, pinned to its account (module docstring).

    Raises:
        BackfillError: no credentials, a malformed connection string, or a refused account URL.
    """
    from azure.storage.blob import BlobServiceClient
    from django.conf import settings

    from hokan.core.errors import FetchBlocked
    from hokan.core.web.http import default_allow_hosts
    from hokan.core.web.ssrf import check_url

    connection_string = connection_string if connection_string is not None else settings.AZURE_STORAGE_CONNECTION_STRING
    account_url = account_url if account_url is not None else settings.AZURE_STORAGE_ACCOUNT_URL
    try:
        if connection_string:
            service = BlobServiceClient.from_connection_string(connection_string)
        elif account_url:
            try:
                from azure.identity import DefaultAzureCredential
            except ImportError as exc:
                raise BackfillError("azure", "AZURE_STORAGE_ACCOUNT_URL だけで使うには azure-identity が必要です。"
                                    "AZURE_STORAGE_CONNECTION_STRING を設定してください") from exc  # fmt: skip
            service = BlobServiceClient(account_url, credential=DefaultAzureCredential())
        else:
            raise BackfillError("azure", "AZURE_STORAGE_CONNECTION_STRING（または AZURE_STORAGE_ACCOUNT_URL）が設定されていません")
    except ValueError as exc:
        raise BackfillError("azure", f"接続文字列を読めません（{exc}）") from None
    url = service.url
    try:
        check_url(url, allow_hosts=default_allow_hosts())
    except FetchBlocked as exc:
        raise BackfillError("azure", str(exc)) from exc
    kwargs = {"transport": _pinned_transport(url), "permit_redirects": False, "retry_total": 3}
    if connection_string:
        return BlobServiceClient.from_connection_string(connection_string, **kwargs).get_container_client(container)
    return BlobServiceClient(url, credential=service.credential, **kwargs).get_container_client(container)


def azure_pages(container: str, *, prefix: str = "", page_size: int, client: Any = None) -> Iterator[list[Document]]:
    """Pages of the ``*.json`` blobs of ``container`` (continuation tokens, ``page_size`` a page).

    Raises:
        BackfillError: the container does not exist, or the account refuses the listing.
    """
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    from hokan.core.errors import FetchBlocked

    own = client is None
    client = client or container_client(container)
    try:
        pages = client.list_blobs(name_starts_with=prefix or None, results_per_page=page_size).by_page()
        for page in pages:
            docs = [Document(f"azure://{container}/{blob.name}", blob.size, _blob_reader(client, blob.name))
                    for blob in page if blob.name.lower().endswith(".json")]  # fmt: skip
            if docs:
                yield docs
    except ResourceNotFoundError as exc:
        raise BackfillError("azure", f"コンテナ「{container}」がありません") from exc
    except FetchBlocked as exc:
        raise BackfillError("azure", str(exc)) from exc
    except AzureError as exc:
        raise BackfillError("azure", f"一覧を取得できません（{type(exc).__name__}: {str(exc).splitlines()[0][:200]}）") from exc
    finally:
        if own:
            client.close()


def _blob_reader(client: Any, name: str) -> Callable[[], bytes]:
    def read() -> bytes:
        from django.conf import settings

        limit = settings.HOKAN_KNOWLEDGE_BACKFILL_MAX_ITEM_BYTES
        downloader = client.download_blob(name, max_concurrency=1)
        if downloader.size > limit:
            raise ValueError(f"大きすぎます（{downloader.size:,} バイト、上限 {limit:,} バイト）")
        return bytes(downloader.readall())

    return read


def api_pages(url: str, *, page_size: int, token: str | None = None, client: Any = None) -> Iterator[list[Document]]:
    """Pages of analyses from ``url`` (module docstring), each analysis one Document.

    Raises:
        BackfillError: a refused URL, an HTTP error, an answer that is not the expected JSON, a
            ``next`` link to another origin, or more than ``MAX_PAGES`` pages.
    """
    import httpx
    from django.conf import settings

    from hokan.core.errors import FetchError
    from hokan.core.web.http import guarded_client

    token = settings.HOKAN_KNOWLEDGE_BACKFILL_API_TOKEN if token is None else token
    headers = {"Accept": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    origin = urlsplit(url)[:2]
    seen: set[str] = set()
    own = client is None
    client = client or guarded_client(timeout_s=30, max_bytes=settings.HOKAN_KNOWLEDGE_BACKFILL_MAX_ITEM_BYTES * 10,
                                      headers=headers)  # fmt: skip
    try:
        next_url: str | None = url
        pages = 0
        while next_url:
            if next_url in seen or pages >= MAX_PAGES:
                raise BackfillError("api", f"ページが終わりません（{next_url}）")
            if urlsplit(next_url)[:2] != origin:
                raise BackfillError("api", f"別のサイトへの next は辿りません（{next_url}）")
            seen.add(next_url)
            pages += 1
            try:
                response = client.get(next_url, params={"page_size": page_size} if next_url == url else None)
            except (FetchError, httpx.HTTPError) as exc:
                raise BackfillError("api", f"{next_url} を取得できません（{exc}）") from exc
            if response.status_code != 200:
                raise BackfillError("api", f"{next_url} が HTTP {response.status_code} を返しました")
            try:
                body = response.json()
            except ValueError as exc:
                raise BackfillError("api", f"{next_url} の応答が JSON ではありません") from exc
            items, link = _page_items(body)
            if items is None:
                raise BackfillError("api", f"{next_url} の応答に分析の一覧（{' / '.join(LIST_KEYS)}）がありません")
            base = next_url
            yield [Document(f"{base}#{i}", None, (lambda item=item: json.dumps(item, ensure_ascii=False).encode()))
                   for i, item in enumerate(items)]  # fmt: skip
            next_url = urljoin(base, link) if link else None
    finally:
        if own:
            client.close()


def _page_items(body: Any) -> tuple[list[Any] | None, str | None]:
    if isinstance(body, list):
        return body, None
    if isinstance(body, dict):
        for key in LIST_KEYS:
            if isinstance(body.get(key), list):
                link = body.get("next")
                return body[key], link if isinstance(link, str) and link else None
    return None, None


# --- the run -----------------------------------------------------------------------------------
def _analyses(data: bytes) -> list[Any]:
    parsed = json.loads(data.decode("utf-8-sig"))
    if isinstance(parsed, list):
        return parsed
    if isinstance(parsed, dict) and isinstance(parsed.get("analyses"), list):
        return list(parsed["analyses"])
    return [parsed]


def run_backfill(pages: Iterator[list[Document]], *, on_document: Callable[[BackfillReport, Document], None] | None = None,
                 index_obj: Any = None) -> BackfillReport:  # fmt: skip
    """Store every analysis of ``pages`` (module docstring); bad documents are reported and skipped.

    Raises:
        BackfillError: from the source (the report of what was stored so far is lost only in
            the message: every stored analysis stays stored).
    """
    from django.conf import settings

    from hokan.knowledge.errors import AnalysisInvalid
    from hokan.knowledge.service import store_analysis

    report = BackfillReport()
    limit = settings.HOKAN_KNOWLEDGE_BACKFILL_MAX_ITEM_BYTES
    for page in pages:
        for doc in page:
            report.documents += 1
            try:
                if doc.size is not None and doc.size > limit:
                    raise ValueError(f"大きすぎます（{doc.size:,} バイト、上限 {limit:,} バイト）")
                data = doc.read()
                if len(data) > limit:
                    raise ValueError(f"大きすぎます（{len(data):,} バイト、上限 {limit:,} バイト）")
                analyses = _analyses(data)
            except (ValueError, OSError) as exc:
                reason = f"JSON として読めません（{exc}）" if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) else str(exc)
                report.failed.append((doc.name, reason))
                if on_document:
                    on_document(report, doc)
                continue
            except Exception as exc:  # the SDK's download errors: the document is skipped, named
                report.failed.append((doc.name, f"読み取れません（{type(exc).__name__}）"))
                if on_document:
                    on_document(report, doc)
                continue
            for number, payload in enumerate(analyses, start=1):
                name = doc.name if len(analyses) == 1 else f"{doc.name}[{number}]"
                try:
                    analysis = store_analysis(payload, source=name, index_obj=index_obj)
                except AnalysisInvalid as exc:
                    report.failed.append((name, str(exc)))
                    continue
                if getattr(analysis, "created", False):
                    report.created += 1
                elif getattr(analysis, "changed", False):
                    report.updated += 1
                else:
                    report.unchanged += 1
                if getattr(analysis, "index_error", None):
                    report.index_errors += 1
            if on_document:
                on_document(report, doc)
    return report
