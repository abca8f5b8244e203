"""AI estimate API (design document 004): a 13-step questionnaire becomes a priced estimate.

Modules: ``pricing`` (pure price engine, §5), ``sanitizer`` (§4), ``validation`` (§7),
``adapters`` (LLM adapters and the fallback templates, §6), ``generate`` (the flow of §8),
``steps`` (sessions and the step-7 dynamic questions), ``followups`` (PDF, mail, Notion, §9),
``api`` (Django Ninja endpoints, §3), ``command`` (``hokan estimate quote``).
"""
