"""What the compute does: the scenario names the catalog's rows and ``--scenario`` use.

Kept free of imports so that building the command line (``amlprobe --version``) stays cheap;
``checks.inputs`` re-exports them.
"""

SCENARIOS = (
    "compute-instance",
    "compute-cluster",
    "serverless",
    "no-public-ip",
    "studio",
    "vscode",
    "packages",
    "docker-images",
    "kubernetes",
)
DEFAULT_SCENARIOS = ("compute-instance",)
