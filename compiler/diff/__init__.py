"""What a change renders to: compare the effective configs of two revisions (DESIGN §8 ``diff``)."""
