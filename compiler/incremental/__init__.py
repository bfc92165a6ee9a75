"""Incremental compile (issue 14 §2): what a target reads, and a cache of each target's result keyed by it."""
