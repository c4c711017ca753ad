"""Every report a test produces must validate against the published JSON Schema."""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

from probe.model import Report, json_schema


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
