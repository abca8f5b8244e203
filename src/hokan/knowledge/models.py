"""Models of the knowledge app."""

from django.db import models  # noqa: F401
