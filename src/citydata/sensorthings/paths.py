"""Resource paths of the SensorThings API (OGC 18-088 section 9.2), parsed into segments.

    Things                          collection
    Things(1)                       entity
    Things(1)/name                  property          Things(1)/name/$value   raw value
    Things(1)/Datastreams           navigation (collection of related entities)
    Datastreams(1)/Thing            navigation to one entity
    Things(1)/Datastreams/$ref      links only
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from citydata.errors import NotFound, ValidationFailed
from citydata.sensorthings.model import BY_SET, ENTITIES, Entity, Nav

_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((\d+)\))?$")


@dataclass
class Hop:
    """One step: an entity type, and the id when the path names one."""

    entity: Entity
    id: int | None = None
    via: Nav | None = None          # how we got here from the previous hop


@dataclass
class ResourcePath:
    hops: list[Hop] = field(default_factory=list)
    property_name: str | None = None
    value: bool = False             # $value
    ref: bool = False               # $ref

    @property
    def target(self) -> Hop:
        return self.hops[-1]

    @property
    def is_collection(self) -> bool:
        last = self.target
        return last.id is None and (last.via is None or last.via.many) and self.property_name is None

    def parent(self) -> Hop | None:
        return self.hops[-2] if len(self.hops) > 1 else None


def parse_path(path: str) -> ResourcePath:
    """Parse a path relative to the version root (``Things(1)/Datastreams``)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts:
        raise ValidationFailed("empty resource path", code="invalid_path")
    out = ResourcePath()
    for index, part in enumerate(parts):
        if part == "$value":
            if out.property_name is None or index != len(parts) - 1:
                raise ValidationFailed("$value must follow a property", code="invalid_path")
            out.value = True
            continue
        if part == "$ref":
            if index != len(parts) - 1 or out.property_name is not None:
                raise ValidationFailed("$ref must end a navigation path", code="invalid_path")
            out.ref = True
            continue
        match = _SEGMENT.match(part)
        if match is None:
            raise NotFound(f"no resource at {part!r}", code="invalid_path")
        name, id_text = match.group(1), match.group(2)
        ident = int(id_text) if id_text is not None else None
        if not out.hops:
            entity = BY_SET.get(name)
            if entity is None:
                raise NotFound(f"unknown entity set {name!r}", code="unknown_entity_set")
            out.hops.append(Hop(entity, ident))
            continue
        if out.property_name is not None:
            raise NotFound(f"nothing below the property {out.property_name!r}", code="invalid_path")
        current = out.hops[-1]
        if current.id is None and (current.via is None or current.via.many):
            raise NotFound(f"{name!r} must follow a single entity, not a collection", code="invalid_path")
        nav = current.entity.nav(name)
        if nav is not None:
            if ident is not None and not nav.many:
                raise NotFound(f"{name} is a single entity; it takes no id", code="invalid_path")
            out.hops.append(Hop(ENTITIES[nav.target], ident, nav))
            continue
        if ident is None and current.entity.prop(name) is not None:
            out.property_name = name
            continue
        raise NotFound(f"{current.entity.name} has no property or navigation {name!r}", code="invalid_path")
    return out
