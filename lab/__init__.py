"""The simulated network and the generic servers tests and the lab run against."""
