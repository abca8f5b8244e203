"""Shared building blocks of hokan: Japanese normalisation, fetching, extraction, LLM, budget."""
