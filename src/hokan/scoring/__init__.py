"""The scoring app."""
