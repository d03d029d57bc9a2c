"""Reading: resource paths plus query options become SQL; pages, counts, next links and expansions.

Expansions are fetched per page, not per row: one query per expanded navigation for the whole page (a
to-many expansion with ``$top`` becomes one ``UNION ALL`` of small index range scans, one per parent, so
"each Datastream with its latest Observation" never sorts the whole observations table)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Select, and_, func, select, true, union_all
from sqlalchemy.engine import RowMapping

from citydata.errors import NotFound
from citydata.sensorthings.model import ENTITIES, Entity, Nav
from citydata.sensorthings.paths import ResourcePath
from citydata.sensorthings.query import Expand, Query, compile_filter, compile_orderby
from citydata.sensorthings.serialize import entity_json

if TYPE_CHECKING:
    from citydata.store import Store

UNION_PARENTS = 200   # above this many parents, a window function replaces the per-parent UNION ALL


@dataclass
class Page:
    value: list[dict[str, Any]]
    count: int | None = None
    next_link: str | None = None
    rows: list[RowMapping] = field(default_factory=list)


async def load_rows(store: Store, entity: Entity, ids: Sequence[int]) -> list[RowMapping]:
    if not ids:
        return []
    return await store.fetch_all(select(entity.table).where(entity.table.c.id.in_(list(ids))))


def normalize_expands(expands: list[Expand]) -> list[Expand]:
    """``Datastreams/Observations`` is ``Datastreams($expand=Observations)``; repeated heads are merged."""
    merged: dict[str, Expand] = {}
    order: list[str] = []
    for ex in expands:
        head, rest = ex.path[0], ex.path[1:]
        if rest:
            inner = Expand(rest, ex.query)
            target = merged.get(head)
            if target is None:
                target = Expand([head], Query())
                merged[head] = target
                order.append(head)
            target.query.expand = normalize_expands([*target.query.expand, inner])
        else:
            existing = merged.get(head)
            if existing is None:
                merged[head] = Expand([head], ex.query)
                order.append(head)
            else:  # keep the explicit options, and any nested expands gathered so far
                ex.query.expand = normalize_expands([*existing.query.expand, *ex.query.expand])
                merged[head] = Expand([head], ex.query)
    return [merged[h] for h in order]


class Reader:
    def __init__(self, store: Store, base_url: str, *, page_size: int = 100) -> None:
        self.store, self.base_url, self.page_size = store, base_url, page_size

    # -- scoping by path -----------------------------------------------------------------------------------
    async def scope(self, path: ResourcePath) -> ColumnElement[bool]:
        """The condition on the target entity's table that the path implies (404 when a hop is missing)."""
        cond: ColumnElement[bool] | None = None
        prev_entity: Entity | None = None
        prev_id: int | None = None      # the previous hop resolved to this one entity: join by plain equality
        for hop in path.hops:
            entity = hop.entity
            t = entity.table
            if hop.via is None:
                here: ColumnElement[bool] = true()
            else:
                assert prev_entity is not None and cond is not None
                nav = hop.via
                prev = prev_entity.table
                parents = select(prev.c.id).where(cond) if prev_id is None else None
                if nav.kind == "fk_here":
                    here = t.c.id.in_(select(prev.c[nav.column]).where(cond))
                elif nav.kind == "fk_there":
                    here = t.c[nav.column] == prev_id if parents is None else t.c[nav.column].in_(parents)
                else:
                    assert nav.link is not None
                    link = nav.link
                    owner = link.c[nav.this_column] == prev_id if parents is None else \
                        link.c[nav.this_column].in_(parents)
                    here = t.c.id.in_(select(link.c[nav.target_column]).where(owner))
            if hop.id is not None:
                here = and_(here, t.c.id == hop.id)
            single = hop.id is not None or (hop.via is not None and not hop.via.many)
            prev_id = None
            if single:
                found = await self.store.scalar(select(t.c.id).where(here).limit(1))
                if found is None:
                    raise NotFound(f"{entity.name}{'' if hop.id is None else f'({hop.id})'} not found",
                                   code="entity_not_found")
                here = t.c.id == found
                prev_id = int(found)
            cond, prev_entity = here, entity
        assert cond is not None
        return cond

    # -- collections ---------------------------------------------------------------------------------------
    async def collection(self, path: ResourcePath, query: Query, *, url: str,
                         params: Mapping[str, str]) -> Page:
        entity = path.target.entity
        scope = await self.scope(path)
        top = self.page_size if query.top is None else query.top
        page = await self._page(entity, query, scope, top, query.skip)
        more = len(page.rows) > top
        rows = page.rows[:top]
        count = await self._count(entity, query, scope) if query.count else None
        next_link = None
        if more:
            nxt = dict(params)
            nxt["$skip"] = str(query.skip + top)
            nxt["$top"] = str(top)
            next_link = f"{url}?{urlencode(nxt, safe='$(),;=/ ')}"
        value = await self.render(entity, rows, query)
        return Page(value, count, next_link, rows)

    async def _page(self, entity: Entity, query: Query, scope: ColumnElement[bool], top: int, skip: int) -> Page:
        t = entity.table
        dialect = self.store.dialect
        compiled = compile_filter(query.filter, entity, dialect=dialect, postgis=self.store.postgis) \
            if query.filter is not None else None
        where = scope if compiled is None or compiled.where is None else and_(scope, compiled.where)
        order = compile_orderby(query.orderby, entity, dialect=dialect)
        stmt: Select[Any] = select(t).where(where).order_by(*order)
        if compiled is not None and compiled.residual is not None:
            rows = [r for r in await self.store.fetch_all(stmt) if compiled.residual(r)]  # type: ignore[arg-type]
            return Page([], rows=rows[skip:skip + top + 1])
        rows = await self.store.fetch_all(stmt.offset(skip).limit(top + 1))
        return Page([], rows=rows)

    async def _count(self, entity: Entity, query: Query, scope: ColumnElement[bool]) -> int:
        t = entity.table
        compiled = compile_filter(query.filter, entity, dialect=self.store.dialect, postgis=self.store.postgis) \
            if query.filter is not None else None
        where = scope if compiled is None or compiled.where is None else and_(scope, compiled.where)
        if compiled is not None and compiled.residual is not None:
            rows = await self.store.fetch_all(select(t).where(where))
            return len([r for r in rows if compiled.residual(r)])  # type: ignore[arg-type]
        return int(await self.store.scalar(select(func.count()).select_from(t).where(where)) or 0)

    async def entity(self, path: ResourcePath, query: Query) -> tuple[dict[str, Any], RowMapping]:
        entity = path.target.entity
        scope = await self.scope(path)
        row = await self.store.fetch_one(select(entity.table).where(scope))
        if row is None:
            raise NotFound(f"{entity.name} not found", code="entity_not_found")
        return (await self.render(entity, [row], query))[0], row

    # -- rendering with expansions --------------------------------------------------------------------------
    async def render(self, entity: Entity, rows: Sequence[RowMapping], query: Query) -> list[dict[str, Any]]:
        select_set = set(query.select) if query.select is not None else None
        expanded: dict[int, dict[str, Any]] = {int(r["id"]): {} for r in rows}
        for ex in normalize_expands(query.expand):
            nav = entity.nav(ex.path[0])
            assert nav is not None
            await self._expand(entity, nav, rows, ex.query, expanded)
        return [entity_json(entity, r, self.base_url, select=select_set, expanded=expanded[int(r["id"])])
                for r in rows]

    async def _expand(self, entity: Entity, nav: Nav, rows: Sequence[RowMapping], query: Query,
                      out: dict[int, dict[str, Any]]) -> None:
        target = ENTITIES[nav.target]
        t = target.table
        if not rows:
            return
        if not nav.many:
            if entity.name == "Observation" and nav.name in ("Datastream", "MultiDatastream"):
                ids = {int(r["datastream_id"]) for r in rows}
            else:
                ids = {int(r[nav.column]) for r in rows if r[nav.column] is not None}
            children = {int(r["id"]): r for r in await self.store.fetch_all(select(t).where(t.c.id.in_(ids)))}
            rendered = {i: v for i, v in zip(children, await self.render(target, list(children.values()), query),
                                             strict=True)}
            for r in rows:
                key = r["datastream_id"] if entity.name == "Observation" and nav.column == "datastream_id" \
                    else r[nav.column]
                out[int(r["id"])][nav.name] = rendered.get(int(key)) if key is not None else None
            return
        parent_ids = [int(r["id"]) for r in rows]
        if nav.kind == "fk_there":
            parent_col = t.c[nav.column]
            base: Select[Any] = select(t, parent_col.label("cd_parent"))
        else:
            assert nav.link is not None
            link = nav.link
            parent_col = link.c[nav.this_column]
            base = select(t, parent_col.label("cd_parent")).join(link, link.c[nav.target_column] == t.c.id)
        dialect = self.store.dialect
        compiled = compile_filter(query.filter, target, dialect=dialect, postgis=self.store.postgis) \
            if query.filter is not None else None
        where = true() if compiled is None or compiled.where is None else compiled.where
        order = compile_orderby(query.orderby, target, dialect=dialect)
        top = self.page_size if query.top is None else query.top
        limit = top + 1
        if compiled is not None and compiled.residual is not None:
            all_rows = [r for r in await self.store.fetch_all(base.where(parent_col.in_(parent_ids), where)
                                                              .order_by(*order)) if compiled.residual(r)]  # type: ignore[arg-type]
            grouped: dict[int, list[RowMapping]] = {}
            for r in all_rows:
                grouped.setdefault(int(r["cd_parent"]), []).append(r)
            children_by_parent = {p: v[query.skip:query.skip + limit] for p, v in grouped.items()}
        elif len(parent_ids) <= UNION_PARENTS:
            branches = [base.where(parent_col == pid, where).order_by(*order).offset(query.skip).limit(limit)
                        .subquery().select() for pid in parent_ids]
            fetched = await self.store.fetch_all(union_all(*branches) if len(branches) > 1 else branches[0])
            children_by_parent = {}
            for r in fetched:
                children_by_parent.setdefault(int(r["cd_parent"]), []).append(r)
        else:
            rn = func.row_number().over(partition_by=parent_col, order_by=list(order)).label("cd_rn")
            inner = base.add_columns(rn).where(parent_col.in_(parent_ids), where).subquery()
            fetched = await self.store.fetch_all(select(inner).where(inner.c.cd_rn > query.skip,
                                                                     inner.c.cd_rn <= query.skip + limit)
                                                 .order_by(inner.c.cd_parent, inner.c.cd_rn))
            children_by_parent = {}
            for r in fetched:
                children_by_parent.setdefault(int(r["cd_parent"]), []).append(r)
        counts: dict[int, int] = {}
        if query.count:
            source: Any = t
            if nav.kind != "fk_there":
                assert nav.link is not None
                source = t.join(nav.link, nav.link.c[nav.target_column] == t.c.id)
            cstmt = select(parent_col, func.count()).select_from(source)
            cstmt = cstmt.where(parent_col.in_(parent_ids), where).group_by(parent_col)
            counts = {int(p): int(c) for p, c in (await self._rows(cstmt))}
        flat = [r for p in parent_ids for r in children_by_parent.get(p, [])[:top]]
        rendered_flat = await self.render(target, flat, query)
        i = 0
        for pid in parent_ids:
            kids = children_by_parent.get(pid, [])
            shown = kids[:top]
            value: dict[str, Any] = {"value": rendered_flat[i:i + len(shown)]}
            i += len(shown)
            if query.count:
                value["count"] = counts.get(pid, 0)
            if len(kids) > top:
                qs = {"$top": str(top), "$skip": str(query.skip + top)}
                value["next"] = f"{self.base_url}/{entity.set_name}({pid})/{nav.name}?{urlencode(qs, safe='$')}"
            out[pid][nav.name] = value

    async def _rows(self, stmt: Any) -> list[Any]:
        async with self.store.read() as conn:
            return list((await conn.execute(stmt)).all())

    async def property_value(self, path: ResourcePath) -> tuple[Any, RowMapping]:
        from citydata.sensorthings.serialize import prop_value

        entity = path.target.entity
        scope = await self.scope(path)
        row = await self.store.fetch_one(select(entity.table).where(scope))
        if row is None:
            raise NotFound(f"{entity.name} not found", code="entity_not_found")
        prop = entity.prop(path.property_name or "")
        assert prop is not None
        if prop.name == "id":
            return int(row["id"]), row
        return prop_value(prop, row), row

