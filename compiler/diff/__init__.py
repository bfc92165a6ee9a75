"""What a change renders to: compare the effective configs of two revisions (README "Commands", ``diff``)."""
