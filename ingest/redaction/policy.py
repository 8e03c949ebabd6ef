"""The redaction policy (``policies/redaction.json``): per classification, which entity types to
keep, mask (``[PERSON]``) or pseudonymise (``[PERSON-3f9a1c02]``, stable per tenant), and from
which detector confidence on.

An unknown classification gets the rule named by ``unknown_classification`` (the strictest one
by default), so a typo never means "no redaction".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ingest.policy_data import PolicyError

Action = Literal["keep", "mask", "pseudonymise"]
ACTIONS: tuple[Action, ...] = ("keep", "pseudonymise", "mask")  # weakest to strongest
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class EntityRule:
    action: Action
    threshold: float


@dataclass(frozen=True)
class RedactionRule:
    """What to do with each entity type in one classification (types not listed are kept)."""

    classification: str
    entities: dict[str, EntityRule] = field(default_factory=dict)

    @property
    def active(self) -> dict[str, EntityRule]:
        return {name: rule for name, rule in self.entities.items() if rule.action != "keep"}

    @property
    def needs_detection(self) -> bool:
        return bool(self.active)

    def merged(self, other: RedactionRule) -> RedactionRule:
        """The stricter of two rules per entity (used when an answer draws on several classifications)."""
        names = set(self.entities) | set(other.entities)
        keep = EntityRule("keep", 1.0)
        combined = {n: _stricter(self.entities.get(n, keep), other.entities.get(n, keep)) for n in names}
        return RedactionRule(f"{self.classification}+{other.classification}", combined)


def _stricter(a: EntityRule, b: EntityRule) -> EntityRule:
    action = max(a.action, b.action, key=ACTIONS.index)
    return EntityRule(action, min(a.threshold, b.threshold))


class RedactionPolicy:
    """Parsed and validated ``redaction.json``."""

    def __init__(self, rules: dict[str, RedactionRule], unknown: str) -> None:
        self.rules = rules
        self.unknown = unknown

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RedactionPolicy:
        """:raises PolicyError: naming the offending classification or entity."""
        raw = data.get("classifications")
        if not isinstance(raw, dict) or not raw:
            raise PolicyError("redaction.json needs a non-empty 'classifications' object")
        rules = {name: _rule(name, body) for name, body in raw.items()}
        unknown = data.get("unknown_classification", max(rules, key=lambda n: len(rules[n].active)))
        if unknown not in rules:
            raise PolicyError(f"redaction.json: unknown_classification {unknown!r} is not one of the classifications")
        return cls(rules, unknown)

    def rule_for(self, classification: str) -> RedactionRule:
        return self.rules.get(classification) or self.rules[self.unknown]

    def rule_for_all(self, classifications: Iterable[str]) -> RedactionRule:
        rules = [self.rule_for(c) for c in sorted(set(classifications))]
        merged = rules[0] if rules else RedactionRule("none")
        for rule in rules[1:]:
            merged = merged.merged(rule)
        return merged


def _rule(classification: str, body: Any) -> RedactionRule:
    if not isinstance(body, dict):
        raise PolicyError(f"redaction.json: classification {classification!r} must be an object")
    threshold = _threshold(body.get("threshold", DEFAULT_THRESHOLD), classification)
    entities: dict[str, EntityRule] = {}
    for entity, spec in (body.get("entities") or {}).items():
        action, own = (
            (spec, threshold) if isinstance(spec, str) else (spec.get("action"), spec.get("threshold", threshold))
        )
        if action not in ACTIONS:
            raise PolicyError(f"redaction.json: {classification}.{entity}: action must be one of {', '.join(ACTIONS)}")
        entities[entity] = EntityRule(action, _threshold(own, f"{classification}.{entity}"))
    return RedactionRule(classification, entities)


def _threshold(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise PolicyError(f"redaction.json: {where}: threshold must be a number between 0 and 1")
    return float(value)
