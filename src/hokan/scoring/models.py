"""Models of the scoring app."""

from django.db import models  # noqa: F401
