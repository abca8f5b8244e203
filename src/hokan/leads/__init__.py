"""Sales lead list enrichment (design document 000)."""
