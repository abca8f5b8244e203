"""The catalogue of municipal services and their template variables (design document 003 §3, §10).

The data lives in ``catalogue.json`` beside this module (shipped in the package, hand-editable;
the admin copies it into ``Service`` / ``VariableDefinition`` rows, which may then be edited):

- ``fields``: the generic facts of §3 (``department``, ``phone``, ``email``, ``address``,
  ``postal_code``, ``office_hours``, ``fee``, ``premium_rate``, ``subsidy_amount``,
  ``required_documents``, ``application_method``, ``online_available``, ``processing_time``,
  ``location``, ``access``, ``parking``, and a few more: ``eligibility``, ``deadline``, …). Each has a
  Japanese label, description, examples and ``validation_type``.
- ``services``: one per template (国民健康保険, 住民票, 粗大ごみ, 児童手当, …): ``topic`` (the English
  identifier, one word of ``[a-z]``, listed in docs/glossary.md), Japanese ``name``, ``category``
  (the categories of §10.3 plus 戸籍・住民, 健康・保険, 子育て・教育) and its variable names.
- ``variables``: about 200, named ``<topic>_<field>`` (``sodaigomi_fee``, ``kokuho_phone``): the
  service's topic, then one of the generic fields. Each carries its own Japanese description and
  examples (a variable without them is refused at load), category and ``validation_type``.

``validation_type`` is one of issue 10 §1's kinds — phone, email, url, fee, date, time_range,
percent, postal_code, count, boolean, text — or ``address`` (core's address kind, which refuses an
e-mail address or a URL as an address). A variable IS a :class:`hokan.core.fields.FieldSpec`
(:attr:`VariableSpec.field_spec`): every value is validated by ``core.fields.clean``, never by a
second validator here.

A broken data file raises :class:`hokan.core.errors.InputError` naming the file, the variable (or
service) and the reason.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hokan.core.errors import InputError
from hokan.core.fields import FieldSpec, Kind

DATA_FILE = Path(__file__).with_name("catalogue.json")

# validation_type (issue 10 §1) → core.fields kind.
VALIDATION_KINDS: dict[str, Kind] = {
    "phone": "phone", "email": "email", "url": "url", "fee": "fee", "date": "date", "time_range": "time_range",
    "percent": "percent", "postal_code": "postal_code", "count": "count", "boolean": "boolean", "text": "text",
    "address": "address",
}  # fmt: skip

# Fields whose value is a direction to the reader (core.fields.FieldSpec.directions).
DIRECTION_FIELDS = frozenset({"application_method"})

_TOPIC = re.compile(r"[a-z]+")
_FIELD = re.compile(r"[a-z]+(?:_[a-z]+)*")


@dataclass(frozen=True)
class VariableSpec:
    """One template variable (or one generic field of §3 when ``topic`` is "").

    name: ``<topic>_<field>`` (``sodaigomi_fee``), or the field itself for a generic field (``fee``).
    topic: the service's identifier (``sodaigomi``), "" for a generic field.
    field: the generic fact it is (``fee``): what the rule extractors look for.
    label: Japanese label (粗大ごみの収集の手数料). category: §10.3 category (環境・ごみ).
    description / examples: Japanese; what the value is, for editors and the LLM prompt.
    validation_type: a key of ``VALIDATION_KINDS``.
    """

    name: str
    topic: str
    field: str
    label: str
    category: str
    description: str
    examples: tuple[str, ...]
    validation_type: str

    @functools.cached_property
    def field_spec(self) -> FieldSpec:
        """The core field spec of this variable (kind from ``validation_type``; validated by ``core.fields.clean``)."""
        return FieldSpec(
            name=self.name,
            label=self.label,
            kind=VALIDATION_KINDS[self.validation_type],
            prompt_label=self.label,
            max_length=500,
            description=self.description,
            examples=self.examples,
            directions=self.field in DIRECTION_FIELDS,
        )


@dataclass(frozen=True)
class ServiceSpec:
    """One service template: ``topic`` (identifier), Japanese ``name``, ``category``, its variable names."""

    topic: str
    name: str
    category: str
    variables: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    """The whole catalogue: services, their variables, and the generic fields of §3."""

    services: tuple[ServiceSpec, ...]
    variables: tuple[VariableSpec, ...]
    fields: tuple[VariableSpec, ...] = ()

    @functools.cached_property
    def _by_name(self) -> dict[str, VariableSpec]:
        return {spec.name: spec for spec in (*self.fields, *self.variables)}

    def variable(self, name: str) -> VariableSpec:
        """The variable or generic field called ``name``. Raises KeyError (naming it) if unknown."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"カタログにない変数です: {name}") from None

    def service(self, topic_or_name: str) -> ServiceSpec:
        """The service by topic (``kokuho``) or Japanese name (国民健康保険). Raises KeyError if unknown."""
        for service in self.services:
            if topic_or_name in (service.topic, service.name):
                return service
        raise KeyError(f"カタログにないサービスです: {topic_or_name}")

    def variables_of(self, service: ServiceSpec | str) -> tuple[VariableSpec, ...]:
        """The variables of one service, in catalogue order."""
        svc = service if isinstance(service, ServiceSpec) else self.service(service)
        return tuple(self._by_name[name] for name in svc.variables)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and check the catalogue (default: the packaged ``catalogue.json``).

    Raises:
        InputError: the file is missing, not JSON, or an entry is broken (a variable without a
            description or examples, an unknown validation_type, field or topic, a name not
            ``<topic>_<field>``, a duplicate); the message names the file, the entry and the reason.
    """
    if path is None:
        return _packaged()
    return _load(Path(path))


@functools.lru_cache(maxsize=1)
def _packaged() -> Catalogue:
    return _load(DATA_FILE)


def _load(path: Path) -> Catalogue:
    source = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"カタログを読めません（{exc.strerror or exc}）", source=source) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"カタログがJSONとして読めません（{exc}）", source=source) from exc
    if not isinstance(data, dict):
        raise InputError("カタログの最上位はオブジェクト（fields, services, variables）にしてください", source=source)
    for key in ("fields", "services", "variables"):
        if not isinstance(data.get(key), list):
            raise InputError(f"「{key}」の一覧がありません", source=source, field=key)

    fields = tuple(_variable(entry, source, generic=True) for entry in data["fields"])
    field_names = {spec.name for spec in fields}
    _unique([spec.name for spec in fields], source, "fields")

    services: list[ServiceSpec] = []
    for entry in data["services"]:
        where = _name_of(entry, "topic")
        topic = _text(entry, "topic", source, where)
        if not _TOPIC.fullmatch(topic):
            raise InputError(f"サービス「{where}」: topic は英小文字のみの1語にしてください（{topic}）", source=source, field="topic")
        names = entry.get("variables")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise InputError(f"サービス「{where}」: variables（変数名の一覧）がありません", source=source, field="variables")
        services.append(
            ServiceSpec(
                topic=topic,
                name=_text(entry, "name", source, where),
                category=_text(entry, "category", source, where),
                variables=tuple(names),
            )
        )
    _unique([s.topic for s in services], source, "services")
    topics = {s.topic for s in services}

    variables = tuple(_variable(entry, source, generic=False) for entry in data["variables"])
    _unique([spec.name for spec in variables], source, "variables")
    by_name = {spec.name: spec for spec in variables}
    for spec in variables:
        if spec.topic not in topics:
            raise InputError(f"変数「{spec.name}」: サービス（topic）「{spec.topic}」がありません", source=source, field="name")
        if spec.field not in field_names:
            raise InputError(f"変数「{spec.name}」: 項目「{spec.field}」が fields にありません", source=source, field="field")
    for service in services:
        for name in service.variables:
            if name not in by_name:
                raise InputError(f"サービス「{service.topic}」: 変数「{name}」が variables にありません", source=source, field="variables")
            if by_name[name].topic != service.topic:
                raise InputError(f"サービス「{service.topic}」: 変数「{name}」は別のサービスのものです", source=source, field="variables")
    return Catalogue(services=tuple(services), variables=variables, fields=fields)


def _variable(entry: Any, source: str, *, generic: bool) -> VariableSpec:
    where = _name_of(entry, "name")
    name = _text(entry, "name", source, where)
    if generic:
        if not _FIELD.fullmatch(name):
            raise InputError(f"項目「{name}」: 名前は英小文字と _ にしてください", source=source, field="name")
        topic, field = "", name
    else:
        field = _text(entry, "field", source, where)
        topic, sep, rest = name.partition("_")
        if not sep or not _TOPIC.fullmatch(topic) or rest != field:
            raise InputError(
                f"変数「{name}」: 名前は <topic>_<field>（field = {field}）にしてください", source=source, field="name"
            )
    validation_type = _text(entry, "validation_type", source, where)
    if validation_type not in VALIDATION_KINDS:
        raise InputError(
            f"変数「{name}」: validation_type「{validation_type}」は使えません（{', '.join(VALIDATION_KINDS)}）",
            source=source,
            field="validation_type",
        )
    examples = entry.get("examples")
    if not isinstance(examples, list) or not examples or not all(isinstance(e, str) and e.strip() for e in examples):
        raise InputError(f"変数「{name}」: 例（examples）がありません", source=source, field="examples")
    return VariableSpec(
        name=name,
        topic=topic,
        field=field,
        label=_text(entry, "label", source, where),
        category="" if generic else _text(entry, "category", source, where),
        description=_text(entry, "description", source, where),
        examples=tuple(examples),
        validation_type=validation_type,
    )


def _name_of(entry: Any, key: str) -> str:
    return str(entry.get(key, "?")) if isinstance(entry, dict) else "?"


def _text(entry: Any, key: str, source: str, where: str) -> str:
    if not isinstance(entry, dict):
        raise InputError(f"「{where}」: 項目はオブジェクトにしてください", source=source)
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        labels = {"description": "説明（description）", "label": "ラベル（label）"}
        raise InputError(f"「{where}」: {labels.get(key, key)}がありません", source=source, field=key)
    return value.strip()


def _unique(names: list[str], source: str, key: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"「{name}」が重複しています", source=source, field=key)
        seen.add(name)
