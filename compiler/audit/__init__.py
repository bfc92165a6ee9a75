"""Git as the audit trail: revisions, blame, value history, bundle provenance (the git IO edge, STYLE R2)."""
