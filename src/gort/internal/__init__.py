"""gort's internal packages, after Go's ``internal/``: not public API."""
