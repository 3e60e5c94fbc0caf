"""Change notices for running schedulers (filled in by the live-changes work)."""
