"""Condition kinds: ``base.py`` holds the one base class; every other module here is one kind."""

from citydata.rules.conditions.base import (
    BindContext,
    Condition,
    Fact,
    Limits,
    Trigger,
    condition_kinds,
    parse_condition,
)

__all__ = ["BindContext", "Condition", "Fact", "Limits", "Trigger", "condition_kinds", "parse_condition"]
