"""hokan.registry: public company registries (EDINET code list, gBizINFO) as a local table.

Enrichment asks the registry before any paid API (issue 3 §1): ``match.match_lead`` finds the
record of a lead, ``match.registry_values`` turns it into ``FieldValue``s with method "registry".
"""
