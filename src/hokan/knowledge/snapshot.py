"""Backups of the Qdrant collection (issue 12 §6; document 001 §4.4): ``hokan knowledge snapshot``.

Two kinds:

- **native** (a Qdrant server, ``QDRANT_URL``): Qdrant's snapshot API —
  ``POST /collections/video_analysis_knowledge/snapshots`` (create), ``GET …/snapshots`` (list),
  ``PUT …/snapshots/recover`` with ``location`` = ``file://{QDRANT_SERVER_SNAPSHOTS_PATH}/{collection}/{name}``
  (restore: the server reads the file from its own snapshots folder; default
  ``/qdrant/snapshots``, the path of the official image). qdrant-client's local mode has no
  snapshot API (it raises NotImplementedError), so:
- **jsonl** (the default in local mode; available on a server too): every point — id, named
  vectors (dense floats, sparse indices/values) and payload — exported to
  ``HOKAN_KNOWLEDGE_SNAPSHOT_DIR/{collection}-{UTC time}.jsonl.gz``. Line 1 is a header
  (format, version, collection, created_at, dense size, embedder), then one point per line,
  then a trailer ``{"end": true, "points": n}``. The file is written under a temporary name
  and renamed when complete, so a listed snapshot is never half-written. Consistency: in
  local mode the collection is held by this process (qdrant-client locks the folder) and the
  export runs under this module's lock, so no write interleaves with it.

Restore (jsonl) reads and checks the whole file first — header, every line, the trailer's
count, the dense size against the current embedder — and only then replaces the collection,
so a damaged file never destroys the current index. After a restore the database and the
index may disagree (the database is the source of truth): ``hokan knowledge reindex`` brings
the index back to the database.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from hokan.knowledge.errors import KnowledgeStoreUnavailable, SnapshotError
from hokan.knowledge.store import DENSE, SPARSE, UPSERT_BATCH, KnowledgeIndex

FORMAT = "hokan-knowledge-snapshot"
VERSION = 1
SUFFIX = ".jsonl.gz"
_lock = threading.Lock()


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot: name (file name), kind ("jsonl" | "native"), created_at (UTC), size in
    bytes, points (None when unknown: native snapshots), path (jsonl only)."""

    name: str
    kind: str
    created_at: dt.datetime | None
    size_bytes: int
    points: int | None = None
    path: Path | None = None


def snapshot_dir() -> Path:
    return Path(settings.HOKAN_KNOWLEDGE_SNAPSHOT_DIR)


def default_kind(index: KnowledgeIndex) -> str:
    return "jsonl" if index.local else "native"


def _point_line(record: Any) -> dict[str, Any]:
    vectors = record.vector or {}
    dense = vectors.get(DENSE)
    sp = vectors.get(SPARSE)
    return {"id": str(record.id), "dense": list(map(float, dense)) if dense is not None else None,
            "sparse": {"indices": list(sp.indices), "values": list(sp.values)} if sp is not None else None,
            "payload": record.payload or {}}


def create(*, kind: str | None = None, index: KnowledgeIndex | None = None) -> SnapshotInfo:
    """Create a snapshot of the collection (module docstring).

    Raises:
        SnapshotError: no collection yet, kind "native" in local mode, or the file cannot be written.
        KnowledgeStoreUnavailable: Qdrant cannot be used.
    """
    index = index or KnowledgeIndex()
    kind = kind or default_kind(index)
    if not index.exists():
        raise SnapshotError(f"コレクション {index.collection} がまだありません（分析を保存してから作成してください）")
    if kind == "native":
        if index.local:
            raise SnapshotError("ローカルモードのQdrantにはスナップショットAPIがありません（--kind jsonl を使ってください）")
        try:
            described = index.client.create_snapshot(index.collection, wait=True)
        except Exception as exc:  # noqa: BLE001
            raise KnowledgeStoreUnavailable(f"Qdrantのスナップショットを作成できません: {exc}") from exc
        return _native_info(described)
    if kind != "jsonl":
        raise SnapshotError(f"未対応のスナップショット形式です: {kind!r}（jsonl, native）")
    directory = snapshot_dir()
    now = dt.datetime.now(dt.timezone.utc)
    name = f"{index.collection}-{now.strftime('%Y%m%dT%H%M%S%fZ')}{SUFFIX}"
    final = directory / name
    partial = directory / f".{name}.partial"
    params = index.client.get_collection(index.collection).config.params
    dense_size = params.vectors[DENSE].size if isinstance(params.vectors, dict) else None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with _lock, gzip.open(partial, "wt", encoding="utf-8") as out:
            header = {"format": FORMAT, "version": VERSION, "collection": index.collection,
                      "created_at": now.isoformat(), "dense_size": dense_size, "embedder": index.embedder_name}
            out.write(json.dumps(header, ensure_ascii=False) + "\n")
            count = 0
            for record in index.points(with_vectors=True):
                out.write(json.dumps(_point_line(record), ensure_ascii=False) + "\n")
                count += 1
            out.write(json.dumps({"end": True, "points": count}) + "\n")
        os.replace(partial, final)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise SnapshotError(f"スナップショットを書き込めません（{directory}）: {exc}") from exc
    return SnapshotInfo(name, "jsonl", now, final.stat().st_size, count, final)


def _native_info(described: Any) -> SnapshotInfo:
    created = None
    if getattr(described, "creation_time", None):
        try:
            created = dt.datetime.fromisoformat(str(described.creation_time)).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            created = None
    return SnapshotInfo(described.name, "native", created, int(getattr(described, "size", 0) or 0))


def _read_header(path: Path) -> dict[str, Any]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.loads(f.readline())


def list_snapshots(*, index: KnowledgeIndex | None = None) -> list[SnapshotInfo]:
    """Snapshots, newest first: the jsonl files (any mode) and, on a server, the native ones."""
    found: list[SnapshotInfo] = []
    directory = snapshot_dir()
    if directory.is_dir():
        for path in directory.glob(f"*{SUFFIX}"):
            if path.name.startswith("."):
                continue
            try:
                header = _read_header(path)
                created = dt.datetime.fromisoformat(header["created_at"])
            except (OSError, ValueError, KeyError, EOFError, gzip.BadGzipFile):
                created = None
            found.append(SnapshotInfo(path.name, "jsonl", created, path.stat().st_size, None, path))
    index = index or KnowledgeIndex()
    if not index.local and index.exists():
        try:
            found.extend(_native_info(d) for d in index.client.list_snapshots(index.collection))
        except Exception as exc:  # noqa: BLE001
            raise KnowledgeStoreUnavailable(f"Qdrantのスナップショット一覧を取得できません: {exc}") from exc
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return sorted(found, key=lambda s: s.created_at or epoch, reverse=True)


def _load(path: Path, dense_size: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and points of a jsonl snapshot, fully checked (module docstring)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path.name}: 読み込めません（壊れているか gzip ではありません）: {exc}") from exc
    if len(lines) < 2:
        raise SnapshotError(f"{path.name}: 中身が足りません（ヘッダーと終端行が必要です）")
    try:
        header = json.loads(lines[0])
        trailer = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path.name}: ヘッダーまたは終端行がJSONではありません") from exc
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise SnapshotError(f"{path.name}: hokan のスナップショットではありません（format/version）")
    if trailer.get("end") is not True:
        raise SnapshotError(f"{path.name}: 終端行がありません（作成が途中で止まったファイルです）")
    if header.get("dense_size") != dense_size:
        raise SnapshotError(f"{path.name}: 埋め込み次元 {header.get('dense_size')} が現在の埋め込み（{dense_size}）と"
                            "異なります。同じ埋め込みモデルで復元するか、hokan knowledge reindex で作り直してください")
    points = []
    for number, line in enumerate(lines[1:-1], start=2):
        try:
            item = json.loads(line)
            if not isinstance(item.get("id"), str) or not isinstance(item.get("payload"), dict):
                raise ValueError("id/payload")
            if item.get("dense") is None or len(item["dense"]) != dense_size:
                raise ValueError("dense vector size")
        except (ValueError, TypeError, AttributeError) as exc:
            raise SnapshotError(f"{path.name}: {number}行目が不正です（{exc}）") from exc
        points.append(item)
    if trailer.get("points") != len(points):
        raise SnapshotError(f"{path.name}: 点の数が終端行（{trailer.get('points')}）と一致しません（{len(points)}）")
    return header, points


def restore(name: str, *, index: KnowledgeIndex | None = None) -> int:
    """Replace the collection with snapshot ``name`` (a file name from ``list_snapshots`` or a
    path to a jsonl file; on a server, a native snapshot's name). Returns the points restored
    (-1 for a native restore, whose count the server reports later).

    Raises:
        SnapshotError: not found, damaged, or made with another embedding size (the current
            collection is untouched).
        KnowledgeStoreUnavailable: Qdrant cannot be used.
    """
    from qdrant_client import models

    index = index or KnowledgeIndex()
    path = Path(name)
    if not path.is_absolute() or not path.exists():
        path = snapshot_dir() / name
    if not path.name.endswith(SUFFIX) or not path.is_file():
        if not index.local and not name.endswith(SUFFIX):
            base = str(getattr(settings, "QDRANT_SERVER_SNAPSHOTS_PATH", "/qdrant/snapshots")).rstrip("/")
            try:
                index.client.recover_snapshot(index.collection, location=f"file://{base}/{index.collection}/{name}",
                                              wait=True)
            except Exception as exc:  # noqa: BLE001
                raise SnapshotError(f"Qdrantサーバーでスナップショット {name} を復元できません: {exc}") from exc
            return -1
        raise SnapshotError(f"スナップショット {name} が見つかりません（{snapshot_dir()}）")
    header, points = _load(path, index.embedder.dim)
    with _lock:
        index.drop()
        index.ensure_collection()
        for start in range(0, len(points), UPSERT_BATCH):
            batch = points[start:start + UPSERT_BATCH]
            index.client.upsert(index.collection, wait=True, points=[
                models.PointStruct(id=p["id"], payload=p["payload"], vector={
                    DENSE: p["dense"],
                    **({SPARSE: models.SparseVector(**p["sparse"])} if p.get("sparse") else {}),
                }) for p in batch])
    restored = index.count()
    if restored != len(points):
        raise SnapshotError(f"{path.name}: 復元後の点の数（{restored}）がスナップショット（{len(points)}）と一致しません")
    return restored
