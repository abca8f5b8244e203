"""Models of the municipal app."""

from django.db import models  # noqa: F401
