"""core.extract.merge: one value per field among several sources, groups taken whole."""

from __future__ import annotations

from hokan.core.extract.merge import best_per_field
from hokan.core.fields import FieldValue


def value(field: str, v: object, confidence: float, source: str) -> FieldValue:
    return FieldValue(field=field, value=v, raw=str(v), quote=str(v), source_url=source, method="rule",
                      confidence=confidence)


GROUPS = (("location", "prefecture", "city"),)


def test_the_most_confident_value_wins_and_the_earlier_source_wins_a_tie():
    profile = {"capital": value("capital", 1, 0.9, "profile"), "phone": value("phone", "03", 0.7, "profile")}
    home = {"capital": value("capital", 2, 0.9, "home"), "phone": value("phone", "06", 0.8, "home")}
    best = best_per_field([profile, home])
    assert best["capital"].source_url == "profile"  # a tie: the earlier (better) source
    assert best["phone"].source_url == "home"  # higher confidence


def test_a_group_comes_whole_from_the_source_whose_first_field_wins():
    profile = {"location": value("location", "西新宿1-1", 0.9, "profile"), "prefecture": value("prefecture", "東京都", 0.9, "profile")}
    home = {"location": value("location", "梅田1-1", 0.8, "home"), "prefecture": value("prefecture", "大阪府", 0.95, "home"),
            "city": value("city", "大阪市北区", 0.95, "home")}
    best = best_per_field([profile, home], groups=GROUPS)
    # The home page's more confident prefecture and city are not mixed into the profile's address.
    assert {name: v.source_url for name, v in best.items()} == {"location": "profile", "prefecture": "profile"}


def test_a_source_without_the_groups_first_field_cannot_give_the_group():
    only_city = {"city": value("city", "港区", 0.9, "home")}
    assert best_per_field([only_city], groups=GROUPS) == {}
    assert best_per_field([], groups=GROUPS) == {}
