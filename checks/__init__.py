"""Azure Machine Learning knowledge: what to probe per cloud and scenario, what to expect, and why it failed."""
