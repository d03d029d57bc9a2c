"""The IOC rules engine: rules as data (YAML/JSON, API), condition kinds as plugins, a durable streaming
engine that raises ``alert.raised``/``alert.cleared``/``cap.draft_requested`` on the bus. See docs/rules.md."""

from citydata.rules.catalogue import Catalogue, StreamInfo
from citydata.rules.engine import EngineOptions, EngineStats, RulesEngine
from citydata.rules.model import Rule, parse_rule
from citydata.rules.service import RulesService, pack_documents, read_documents, read_path
from citydata.rules.spec import RuleInvalid, parse_duration

__all__ = [
    "Catalogue",
    "EngineOptions",
    "EngineStats",
    "Rule",
    "RuleInvalid",
    "RulesEngine",
    "RulesService",
    "StreamInfo",
    "pack_documents",
    "parse_duration",
    "parse_rule",
    "read_documents",
    "read_path",
]
