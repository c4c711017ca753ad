"""The diagnosis rules describe themselves: metadata beside the logic, one list of them, and docs that follow.

Adding a rule is writing it, with its ``@rule(...)``, in its family's module and listing it in RULES:
a rule written and not listed fails here, and docs/troubleshooting.md then has its section
(tests/checks/test_docs.py). Every remedy a finding carries must be one its rule declares, so the
docs never miss one: tests/checks/conftest.py checks that in every test of this directory.
"""

from __future__ import annotations

import importlib
import pkgutil

import checks.diagnosis
from checks.diagnosis import RULES, Rule
from checks.docs import remediation_shapes
from checks.remedies import PLACEHOLDERS
from probe.model import Remediation, Severity


def _defined_rules() -> dict[str, Rule]:
    found: dict[str, Rule] = {}
    for info in pkgutil.iter_modules(checks.diagnosis.__path__, "checks.diagnosis."):
        module = importlib.import_module(info.name)
        found.update({f"{info.name}.{name}": v for name, v in vars(module).items() if isinstance(v, Rule)})
    return found


def test_every_rule_written_is_listed_once_in_the_order() -> None:
    defined = _defined_rules()
    assert len(defined) >= 27
    assert sorted(r.id for r in defined.values()) == sorted(r.id for r in RULES)
    assert len({r.id for r in RULES}) == len(RULES)
    assert RULES[-1].id == "unexplained-failure", "the fallback runs last: no failure is ever hidden"


def test_every_rule_carries_its_description() -> None:
    for rule in RULES:
        assert rule.id == rule.id.lower() and " " not in rule.id
        assert isinstance(rule.severity, Severity)
        assert rule.title and rule.cause and rule.fix, rule.id
        assert rule.doc.startswith("https://learn.microsoft.com/"), rule.id
        assert rule.run.__doc__ is None or rule.run.__doc__.strip(), rule.id


def test_declared_remedies_are_remedies_with_placeholders() -> None:
    for rule in RULES:
        for example in rule.remedies:
            shape = example(PLACEHOLDERS)
            assert isinstance(shape, Remediation) and shape.kind and shape.text, rule.id
            assert all("None" not in c for c in shape.commands), rule.id
        assert len(remediation_shapes(rule)) <= len(rule.remedies)
