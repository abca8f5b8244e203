"""Settings of the gunicorn process of tests/core/test_api.py: the project's, with the probe URLs."""

from hokan.settings import *  # noqa: F403

ROOT_URLCONF = "tests.core.api_urls"
