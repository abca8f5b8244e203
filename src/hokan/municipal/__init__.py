"""The municipal app."""
