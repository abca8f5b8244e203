"""WSGI entry of the gunicorn process of tests/core/test_api.py: the project's application with
its URL configuration imported at load time, so that with ``--preload`` a freshly forked worker
answers its first request without importing the APIs (a cold import takes longer than the
short worker timeout the test sets)."""

from django.urls import get_resolver

from hokan.wsgi import application

get_resolver().url_patterns  # noqa: B018 - imports tests.core.api_urls and every API module

__all__ = ["application"]
