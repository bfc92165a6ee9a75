"""Glue for CI platforms: the one marked review comment a pipeline keeps up to date (issue 13 §3)."""
