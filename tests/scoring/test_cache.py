"""The LLM cache of the scoring scope (issue 11 §3; document 002 §4): the key covers everything
that changes an answer, entries live ``cache_ttl_s`` and at most ``cache_max_entries`` are kept,
hits are counted per run, ``--no-cache`` turns it off."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from hokan.core.budget import get_ledger
from hokan.core.llm import get_client
from hokan.scoring import service
from hokan.scoring.config import Categories, Category, RunConfig, load_categories
from hokan.scoring.engine import CACHE_SCOPE, LLMScorer, RunCounters
from hokan.scoring.io import FileSource
from hokan.scoring.models import ScoringJob
from tests.scoring.helpers import texts, write_categories, write_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def scoring_settings(settings):
    settings.HOKAN_LLM_PROVIDER = "perplexity"
    settings.PERPLEXITY_API_KEY = "test-key"
    settings.HOKAN_LLM_BASE_URL = "http://127.0.0.1:9"  # never called here
    settings.HOKAN_LLM_MODEL = "sonar"
    return settings


def make(tmp_path, name="c", **config):
    utterances = texts(6)
    utterances[5] = utterances[0]  # the same utterance in another row
    source = FileSource(write_csv(tmp_path / f"{name}.csv", utterances))
    cats = load_categories(write_categories(tmp_path / "cats.json"))
    sjob, table, _ = service.prepare_job(source, categories=cats, text_column="発話", name=name,
                                         config=RunConfig.from_settings(**config))
    rows = service.job_rows(sjob, table)
    return sjob, rows


def scorer_for(sjob: ScoringJob, **changes) -> LLMScorer:
    config = dataclasses.replace(RunConfig.from_json(sjob.config), **changes)
    categories = Categories.from_json(sjob.categories, config.categories_per_call)
    return LLMScorer(sjob, config, categories, client=get_client(profile="scoring"), ledger=get_ledger("scoring"),
                     estimate_usd=Decimal("0.05"), counters=RunCounters())


def scores(scorer, row):
    return {c.name: round(0.1 * (row.index + 1), 2) for c in scorer.block(0)}


def test_at_most_max_entries_are_kept_and_an_entry_expires_after_its_ttl(scoring_settings, tmp_path):
    sjob, rows = make(tmp_path, cache_max_entries=3, cache_ttl_s=3600)
    scorer = scorer_for(sjob)
    for row in rows[:5]:
        scorer.remember(row, 0, scores(scorer, row), scorer_usage(), rows=5)
    assert scorer.cache.count(CACHE_SCOPE) == 3  # the two least recently used were evicted
    assert scorer.lookup(rows[0], 0) is None and scorer.lookup(rows[1], 0) is None
    assert scorer.lookup(rows[4], 0) == scores(scorer, rows[4])
    assert scorer.lookup(rows[5], 0) is None  # row 5 = row 0's utterance: evicted with it
    assert (scorer.counters.cache_hits, scorer.counters.cache_misses) == (1, 3)
    assert scorer.counters.saved_usd == Decimal("0.002")  # the hit's share of a $0.01 call of 5 rows
    key = scorer.cache_key(rows[4], 0)
    soon, late = timezone.now() + dt.timedelta(seconds=3500), timezone.now() + dt.timedelta(seconds=3700)
    assert scorer.cache.lookup(CACHE_SCOPE, key, now=soon) is not None
    assert scorer.cache.lookup(CACHE_SCOPE, key, now=late) is None  # expired after 3,600 s


def scorer_usage():
    from hokan.core.llm.client import Usage

    return Usage(input_tokens=500, output_tokens=100, cost_usd=Decimal("0.01"), cost_source="provider", calls=1)


def test_the_key_changes_with_everything_that_changes_the_answer_and_only_that(scoring_settings, tmp_path):
    sjob, rows = make(tmp_path)
    scorer = scorer_for(sjob)
    key = scorer.cache_key(rows[0], 0)
    assert scorer.cache_key(rows[5], 0) == key  # the same utterance in another row: the same question
    assert scorer.cache_key(rows[1], 0) != key
    assert scorer_for(sjob, scale="1-5").cache_key(rows[0], 0) != key
    assert scorer_for(sjob, temperature=0.5).cache_key(rows[0], 0) != key
    other_prompt = ScoringJob(pk=sjob.pk, job=sjob.job, system_prompt=sjob.system_prompt + "追加の指示",
                              categories=sjob.categories, config=sjob.config)
    assert scorer_for(other_prompt).cache_key(rows[0], 0) != key
    described = [dict(c) for c in sjob.categories]
    described[0]["description"] += "（返品を含む）"
    other_desc = ScoringJob(pk=sjob.pk, job=sjob.job, system_prompt=sjob.system_prompt, categories=described,
                            config=sjob.config)
    assert scorer_for(other_desc).cache_key(rows[0], 0) != key
    scoring_settings.HOKAN_LLM_MODEL = "sonar-pro"
    assert scorer_for(sjob).cache_key(rows[0], 0) != key


def test_an_answer_cached_from_a_several_utterance_call_serves_the_utterance_asked_alone(scoring_settings, tmp_path):
    sjob, rows = make(tmp_path)
    first = scorer_for(sjob)
    first.remember(rows[2], 0, scores(first, rows[2]), scorer_usage(), rows=5)
    again, _ = make(tmp_path, name="again")  # another job, same sheet
    assert scorer_for(again).lookup(rows[2], 0) == scores(first, rows[2])


def test_no_cache_turns_the_cache_off(scoring_settings, tmp_path):
    sjob, _ = make(tmp_path)
    assert service.llm_scorer(sjob, RunCounters(), no_cache=True).cache is None
    assert service.llm_scorer(sjob, RunCounters()).cache is not None
    assert Categories((Category("a", "b"),)).names == ["a"]
