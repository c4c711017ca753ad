"""How an Azure ML report is worded and grouped (the engine's renderers take it as a ReportStyle)."""

from __future__ import annotations

from probe.style import GENERIC, ReportStyle

AZURE_ML = ReportStyle(
    headlines={**GENERIC.headlines, "critical": "CRITICAL: Azure ML connectivity is broken"},
    # The plan labels each endpoint check with the NSG service tag that covers it (checks.plan).
    group_labels=("service_tag",),
    metric_labels=("service_tag", "resource", "required", "resolver"),
    # The Azure agents' and managed identities' settings: they change how the VM connects.
    bundle_env=r"AZURE.*|AML_.*|AZUREML_.*|MSI_.*|IDENTITY_.*",
)
