"""Feedback on analyses (issue 12 §4; document 001 ``feedback.py``): a rating 1–5 per analysis
(optionally naming a phase) with a comment; the analysis' quality score is their mean.

Atomic: ``rate`` inserts the ``Feedback`` row and increments ``VideoAnalysis.rating_count`` /
``rating_sum`` with one ``UPDATE … SET rating_count = rating_count + 1, rating_sum =
rating_sum + r`` (Django ``F()`` expressions) in the same transaction — the database adds to
the current row, so two ratings at the same moment both count (no read-modify-write in
Python). The new quality score is then written to the stream's Qdrant payload (best effort:
``hokan knowledge reindex`` repairs a missed write).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F

from hokan.core.errors import HokanError
from hokan.knowledge.errors import AnalysisInvalid
from hokan.knowledge.models import Feedback, VideoAnalysis

log = logging.getLogger(__name__)


def rate(video_id: str, rating: int, *, comment: str = "", phase_index: int | None = None,
         source: str = "api", sync_index: bool = True) -> Feedback:
    """Record one rating of ``video_id``'s analysis and update its counters atomically.

    rating: 1–5 (int); comment: ≤ 2,000 characters; phase_index: the phase rated, if one.

    Raises:
        AnalysisInvalid: rating not an integer 1–5, comment too long, unknown phase.
        VideoAnalysis.DoesNotExist: no analysis of ``video_id``.
    """
    problems = []
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        problems.append(("rating", f"1〜5の整数で指定してください（{rating!r}）"))
    if not isinstance(comment, str) or len(comment) > 2000:
        problems.append(("comment", "2,000文字以内の文字列で指定してください"))
    if problems:
        raise AnalysisInvalid(problems, source=video_id)
    analysis = VideoAnalysis.objects.get(video_id=video_id)
    if phase_index is not None and not analysis.phases.filter(index=phase_index).exists():
        raise AnalysisInvalid([("phase_index", f"フェーズ {phase_index} はありません")], source=video_id)
    with transaction.atomic():
        feedback = Feedback.objects.create(analysis=analysis, rating=rating, comment=comment.strip(),
                                           phase_index=phase_index, source=source)
        VideoAnalysis.objects.filter(pk=analysis.pk).update(rating_count=F("rating_count") + 1,
                                                            rating_sum=F("rating_sum") + rating)
    if sync_index:
        analysis.refresh_from_db(fields=["rating_count", "rating_sum"])
        try:
            from hokan.knowledge.store import KnowledgeIndex

            score = analysis.quality_score
            KnowledgeIndex().set_quality(video_id, float(score) if score is not None else None)
        except HokanError as exc:  # Qdrant away or the embedder misconfigured: the rating stands
            log.warning("knowledge: quality score of %s not written to Qdrant (run hokan knowledge reindex): %s",
                        video_id, exc)
    return feedback
