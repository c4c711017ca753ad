"""Every report a test produces must validate against the published JSON Schema; results made up for
tests that judge them."""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

# Reports are validated against the schema `amlprobe schema` publishes, which lists the Azure layer's
# reason codes: importing checks.verdicts registers them (as the command line does for diff and schema).
import checks.verdicts  # noqa: F401
from probe.model import CheckResult, CheckSpec, Report, Status, json_schema
from probe.reasons import ReasonCode


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)  # type: ignore[no-any-return]


def validated(text: str | dict[str, Any]) -> Report:
    """Validate a JSON report against the schema and return it parsed."""
    data = json.loads(text) if isinstance(text, str) else text
    _validator().validate(data)
    return Report.model_validate(data)


def made_up_result(spec: CheckSpec, status: Status, reason: ReasonCode, detail: str, **fields: Any) -> CheckResult:
    """A result for ``spec`` as a prober would report it (labels carried through), without probing."""
    return CheckResult.model_validate(
        {
            "id": spec.id,
            "target": spec.target,
            "status": status,
            "reason": reason,
            "detail": detail,
            "labels": dict(spec.labels),
            "required": spec.required,
            **fields,
        }
    )
