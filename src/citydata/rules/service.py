"""``RulesService``: what the API, the CLI and the platform call. Validation (with the path of a bad field and
the check that every named Datastream exists), create/replace/delete with versions, rule files (YAML or JSON;
one rule, a list, ``{rules: [...]}`` or several YAML documents), the shipped packs, and the engine.

Every change publishes ``rules.changed`` on the bus; the engine (in this process or another node) reloads the
rules when it consumes that event, at a well-defined position of its stream.
"""

from __future__ import annotations

import builtins
import json
import logging
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from citydata.errors import Conflict, ValidationFailed
from citydata.events import make_event
from citydata.rules.catalogue import Catalogue
from citydata.rules.conditions.base import BindContext
from citydata.rules.engine import CHANGED, EngineOptions, ReplayJournal, RulesEngine
from citydata.rules.model import Rule, parse_rule
from citydata.rules.spec import RuleInvalid
from citydata.rules.store import RuleStore

if TYPE_CHECKING:
    from citydata.bus import Bus
    from citydata.clock import Clock
    from citydata.geo import Geography
    from citydata.store import Store

log = logging.getLogger(__name__)
PACKS = ("phuket",)


def read_documents(text: str, name: str = "") -> list[dict[str, Any]]:
    """Rule documents in a YAML or JSON text."""
    try:
        if name.endswith(".json"):
            loaded: list[Any] = [json.loads(text)]
        else:
            loaded = [d for d in yaml.safe_load_all(text) if d is not None]
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ValidationFailed(f"{name or 'rules'}: not valid YAML/JSON ({str(err).splitlines()[0]})",
                               code="rule_invalid") from err
    docs: list[Any] = []
    for item in loaded:
        if isinstance(item, dict) and "rules" in item and "id" not in item:
            item = item["rules"]
        docs.extend(item if isinstance(item, list) else [item])
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise RuleInvalid(f"rules[{i}]", "must be a mapping")
    return docs


def read_path(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for a rule file or every ``*.yaml``/``*.yml``/``*.json`` in a directory."""
    files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json")) if path.is_dir() \
        else [path]
    return [(f.name, doc) for f in files for doc in read_documents(f.read_text("utf-8"), f.name)]


def pack_documents(name: str) -> list[dict[str, Any]]:
    if name not in PACKS:
        raise ValidationFailed(f"unknown rule pack {name!r}; one of {', '.join(PACKS)}")
    text = resources.files("citydata.rules.packs").joinpath(f"{name}.yaml").read_text("utf-8")
    return read_documents(text, f"{name}.yaml")


class RulesService:
    def __init__(self, store: Store, bus: Bus, clock: Clock, *, geography: Geography | None = None,
                 options: EngineOptions | None = None, journal: ReplayJournal | None = None) -> None:
        self.store, self.bus, self.clock, self.geography = store, bus, clock, geography
        self.rules = RuleStore(store)
        self.catalogue = Catalogue(store, geography)
        self.options = options or EngineOptions()
        self.journal = journal
        self.engine: RulesEngine | None = None

    # -- validation ------------------------------------------------------------------------------------------
    async def validate(self, doc: Any) -> Rule:
        """The compiled rule, or ``RuleInvalid`` with the path of the bad field."""
        rule = parse_rule(doc, ctx=BindContext(self.geography))
        for path, ids in self._stream_refs(rule):
            missing = await self.catalogue.missing(ids)
            if missing:
                raise RuleInvalid(path, f"unknown Datastream {missing[0]}")
        return rule

    @staticmethod
    def _stream_refs(rule: Rule) -> builtins.list[tuple[str, set[int]]]:
        refs = [("source.datastreams", set(rule.source.datastreams))]
        for leaf in rule.condition.leaves():
            if leaf.where is not None and leaf.where.datastreams:
                refs.append((f"{leaf.path}.where.datastreams", set(leaf.where.datastreams)))
        return [(p, ids) for p, ids in refs if ids]

    # -- changes ---------------------------------------------------------------------------------------------
    async def create(self, doc: dict[str, Any], *, by: str | None = None, origin: str = "api") -> dict[str, Any]:
        await self.validate(doc)
        if await self.rules.exists(str(doc["id"])):
            raise Conflict(f"rule {doc['id']!r} already exists (PUT /api/v1/rules/{doc['id']} to change it)",
                           code="rule_exists")
        row, _ = await self.rules.save(_clean(doc), by=by, origin=origin)
        await self._changed(row["id"])
        return public(row)

    async def replace(self, rule_id: str, doc: dict[str, Any], *, by: str | None = None,
                      origin: str = "api") -> tuple[dict[str, Any], str]:
        if doc.get("id", rule_id) != rule_id:
            raise RuleInvalid("id", f"must be {rule_id!r} (the rule in the path)")
        doc = {**doc, "id": rule_id}
        await self.validate(doc)
        row, outcome = await self.rules.save(_clean(doc), by=by, origin=origin)
        if outcome != "unchanged":
            await self._changed(rule_id)
        return public(row), outcome

    async def delete(self, rule_id: str, *, by: str | None = None) -> int:
        version = await self.rules.delete(rule_id, by=by)
        await self._changed(rule_id)
        return version

    async def load(self, docs: builtins.list[tuple[str, dict[str, Any]]], *, by: str | None = None,
                   origin: str = "file", only_if_new: bool = False) -> builtins.list[tuple[str, str]]:
        """Validate every document first (nothing is saved when one is invalid), then save each."""
        for where, doc in docs:
            try:
                await self.validate(doc)
            except RuleInvalid as err:
                raise RuleInvalid(f"{where} rule {doc.get('id', '?')}: {err.path}", err.message.split(": ", 1)[-1]) \
                    from err
        results = []
        for _, doc in docs:
            row, outcome = await self.rules.save(_clean(doc), by=by, origin=origin, only_if_new=only_if_new)
            results.append((str(row["id"]), outcome))
        if any(o != "unchanged" for _, o in results):
            await self._changed("*")
        return results

    async def ensure_pack(self, name: str = "phuket") -> int:
        """Load a shipped pack once (idempotent: rules already there, even edited, are left alone)."""
        key = f"rules.pack.{name}"
        if await self.store.get_meta(key):
            return 0
        results = await self.load([(f"{name}.yaml", d) for d in pack_documents(name)], by="system",
                                  origin=f"pack:{name}", only_if_new=True)
        await self.store.set_meta(key, {"loaded": True, "rules": [r for r, _ in results]})
        created = sum(1 for _, o in results if o == "created")
        log.info("rule pack %s: %d rules loaded", name, created)
        return created

    async def _changed(self, rule_id: str) -> None:
        await self.bus.publish(make_event(CHANGED, "rules", self.clock.now(), {"rule_id": rule_id},
                                          source="rules"))

    # -- reads -----------------------------------------------------------------------------------------------
    async def list(self) -> builtins.list[dict[str, Any]]:
        return [public(r) for r in await self.rules.list()]

    async def get(self, rule_id: str) -> dict[str, Any]:
        return public(await self.rules.get(rule_id))

    async def versions(self, rule_id: str) -> builtins.list[dict[str, Any]]:
        return [{"version": v["version"], "op": v["op"], "at": v["at"].isoformat(), "by": v["by"],
                 "doc": v["doc"]} for v in await self.rules.versions(rule_id)]

    # -- the engine ------------------------------------------------------------------------------------------
    async def start(self, *, pack: str | None = "phuket", engine: bool = True) -> None:
        if pack:
            await self.ensure_pack(pack)
        if engine:
            self.engine = RulesEngine(self.store, self.bus, self.clock, catalogue=self.catalogue,
                                      geography=self.geography, options=self.options, journal=self.journal)
            await self.engine.start()

    async def stop(self) -> None:
        if self.engine is not None:
            await self.engine.stop()
            self.engine = None


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "version"}


def public(row: dict[str, Any]) -> dict[str, Any]:
    return {**row["doc"], "version": row["version"], "enabled": row["enabled"], "origin": row.get("origin"),
            "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat(),
            "updated_by": row.get("updated_by")}
