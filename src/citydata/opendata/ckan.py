"""The CKAN action API (read side), framework-free: ``await call(service, action, params, base_url)`` returns
the action's ``result`` or raises ``CkanError``, which the route turns into CKAN's envelope
``{"help", "success": false, "error": {"__type", "message" | field: [...]}}`` with CKAN's status codes.

Actions: package_list, package_show, package_search, organization_list, organization_show, resource_show,
datastore_search, help_show, status_show. Packages carry the Thai GD-Catalog fields at the top level, as the
data.go.th (ckanext-scheming) schema does, and Thai titles with ``title_translated`` for English."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from citydata import __version__
from citydata.errors import CityDataError
from citydata.opendata.catalogue import OpenDataset, Organization

if TYPE_CHECKING:
    from citydata.opendata.service import OpenDataService

FORMATS = (("csv", "CSV", "text/csv"), ("geojson", "GeoJSON", "application/geo+json"),
           ("parquet", "Parquet", "application/vnd.apache.parquet"))
DATASTORE_TYPES = {"text": "text", "int": "int4", "numeric": "numeric", "date": "date", "timestamp": "timestamp"}
MAX_LIMIT = 32000


class CkanError(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.status, self.error = status, error


def validation(**fields: str) -> CkanError:
    return CkanError(409, {"__type": "Validation Error", **{k: [v] for k, v in fields.items()}})


def not_found(message: str = "Not found") -> CkanError:
    return CkanError(404, {"__type": "Not Found Error", "message": message})


def _int(params: dict[str, Any], name: str, default: int, lo: int = 0, hi: int | None = None) -> int:
    raw = params.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError) as err:
        raise validation(**{name: "Invalid integer"}) from err
    if value < lo or (hi is not None and value > hi):
        raise validation(**{name: f"Must be between {lo} and {hi}" if hi is not None else f"Must be >= {lo}"})
    return value


def _json_param(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if isinstance(value, str) and value.strip().startswith(("{", "[")):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as err:
            raise validation(**{name: "Invalid JSON"}) from err
    return value


# -- dicts ----------------------------------------------------------------------------------------------------
def organization_dict(org: Organization, count: int | None = None) -> dict[str, Any]:
    out = {"id": org.id, "name": org.name, "title": org.title, "display_name": org.title,
           "title_translated": {"th": org.title, "en": org.title_en}, "description": org.description,
           "type": "organization", "is_organization": True, "state": "active", "approval_status": "approved",
           "image_url": "", "created": "2026-01-01T00:00:00"}
    if count is not None:
        out["package_count"] = count
    return out


def resource_dict(ds: OpenDataset, fmt: str, base_url: str, modified: str) -> dict[str, Any]:
    i, (ext, label, mime) = next((n, f) for n, f in enumerate(FORMATS) if f[0] == fmt)
    return {"id": ds.resource_id(ext), "package_id": ds.id, "name": f"{ds.title_en} ({label})",
            "name_translated": {"th": f"{ds.title_th} ({label})", "en": f"{ds.title_en} ({label})"},
            "description": ds.notes_en, "format": label, "mimetype": mime,
            "url": f"{base_url}/api/v1/opendata/datasets/{ds.name}.{ext}", "url_type": None,
            "datastore_active": ext == "csv", "position": i, "state": "active", "resource_type": None,
            "created": "2026-01-01T00:00:00", "last_modified": modified, "metadata_modified": modified,
            "resource_data_format": label, "resource_last_updated_date": modified[:10]}


def package_dict(ds: OpenDataset, org: Organization, base_url: str, modified: str) -> dict[str, Any]:
    freq = ds.update_frequency
    gd = ds.gd
    resources = [resource_dict(ds, f[0], base_url, modified) for f in FORMATS]
    return {
        "id": ds.id, "name": ds.name, "type": "dataset", "state": "active", "private": False,
        "title": ds.title_th, "title_translated": {"th": ds.title_th, "en": ds.title_en}, "title_en": ds.title_en,
        "notes": ds.notes_th, "notes_translated": {"th": ds.notes_th, "en": ds.notes_en}, "notes_en": ds.notes_en,
        "author": org.title, "author_email": None, "maintainer": org.title_en, "maintainer_email": None,
        "license_id": gd.get("license_id"), "license_title": gd.get("license_title"),
        "license_url": gd.get("license_url"), "isopen": True, "version": None,
        "url": f"{base_url}/api/3/action/package_show?id={ds.name}",
        "owner_org": org.id, "organization": organization_dict(org),
        "metadata_created": "2026-01-01T00:00:00", "metadata_modified": modified,
        "tags": [{"id": f"tag-{t}", "name": t, "display_name": t, "state": "active", "vocabulary_id": None}
                 for t in ds.tags], "num_tags": len(ds.tags), "groups": [], "relationships_as_object": [],
        "relationships_as_subject": [], "extras": [], "resources": resources, "num_resources": len(resources),
        # Thai GD-Catalog metadata (data.go.th scheming fields)
        "data_type": ds.data_type, "data_category": gd.get("data_category"),
        "data_classification": gd.get("data_classification"), "accessible_condition": gd.get("accessible_condition"),
        "objective": ds.objective, "update_frequency_unit": freq.get("unit"),
        "update_frequency_interval": freq.get("interval"), "geo_coverage": gd.get("geo_coverage"),
        "data_language": gd.get("data_language"), "data_source": org.title, "data_format": ["CSV", "GeoJSON",
                                                                                         "Parquet"],
        "data_support": org.title, "data_collect": org.title, "last_updated_date": modified[:10],
        "high_value_dataset": False, "reference_data": False, "official_statistics": False,
        "anonymisation": {"aggregates_only": True, "k": None, "approved": ds.approved, "safety": ds.safety},
    }


# -- actions --------------------------------------------------------------------------------------------------
class Actions:
    def __init__(self, service: OpenDataService, base_url: str) -> None:
        self.svc, self.base_url = service, base_url.rstrip("/")
        self.cat = service.catalogue

    def _modified(self) -> str:
        return self.svc.clock.now().replace(minute=0, second=0, microsecond=0, tzinfo=None).isoformat()

    def _package(self, ds: OpenDataset) -> dict[str, Any]:
        out = package_dict(ds, self.cat.organization(ds.organization), self.base_url, self._modified())
        out["anonymisation"]["k"] = self.svc.k
        return out

    def _dataset(self, ident: Any, field: str = "id") -> OpenDataset:
        if not ident:
            raise validation(**{field: "Missing value"})
        try:
            return self.cat.get(str(ident))
        except CityDataError as err:
            raise not_found("Dataset not found") from err

    async def package_list(self, p: dict[str, Any]) -> Any:
        names = sorted(ds.name for ds in self.cat.datasets)
        offset = _int(p, "offset", 0)
        limit = _int(p, "limit", len(names) or 1, 1)
        return names[offset:offset + limit]

    async def package_show(self, p: dict[str, Any]) -> Any:
        return self._package(self._dataset(p.get("id") or p.get("name_or_id")))

    async def package_search(self, p: dict[str, Any]) -> Any:
        q = str(p.get("q") or "").strip()
        rows = _int(p, "rows", 10, 0, 1000)
        start = _int(p, "start", 0)
        found = list(self.cat.datasets)
        # Solr-style field clauses in q (tags:flood) work like fq, as on CKAN
        clauses = re.findall(r'(\w+):"?([^"\s]+)"?', str(p.get("fq") or ""))
        words = []
        for token in re.split(r"\s+", q) if q not in ("*:*", "*") else []:
            field, sep, value = token.partition(":")
            if sep and field.isidentifier() and value:
                clauses.append((field, value.strip('"')))
            elif token:
                words.append(token.lower())
        found = [ds for ds in found if all(w in _haystack(ds) for w in words)]
        for key, value in clauses:
            if key in ("organization", "owner_org"):
                found = [ds for ds in found if value in (ds.organization, self.cat.organization(ds.organization).id)]
            elif key == "tags":
                found = [ds for ds in found if value in ds.tags]
            elif key == "res_format":
                found = [ds for ds in found if value.lower() in ("csv", "geojson", "parquet")]
            elif key in ("name", "id"):
                found = [ds for ds in found if value in (ds.name, ds.id)]
            elif key == "license_id":
                found = [ds for ds in found if ds.gd.get("license_id") == value]
            else:
                raise CkanError(409, {"__type": "Search Query Error",
                                      "message": f"Search Query Error: unsupported field {key}"})
        sort = str(p.get("sort") or "score desc, metadata_modified desc")
        if sort.startswith(("name", "title_string")):
            found.sort(key=lambda ds: ds.name, reverse=sort.endswith("desc"))
        results = [self._package(ds) for ds in found[start:start + rows]]
        facet_fields = _json_param(p, "facet.field") or []
        if isinstance(facet_fields, str):
            facet_fields = [facet_fields]
        facets: dict[str, dict[str, int]] = {}
        for name in facet_fields:
            counts: dict[str, int] = {}
            for ds in found:
                for value in _facet_values(ds, str(name)):
                    counts[value] = counts.get(value, 0) + 1
            facets[str(name)] = counts
        search_facets = {name: {"title": name, "items": [{"name": v, "display_name": v, "count": n}
                                                         for v, n in sorted(c.items(), key=lambda kv: -kv[1])]}
                         for name, c in facets.items()}
        return {"count": len(found), "sort": sort, "facets": facets, "search_facets": search_facets,
                "results": results}

    async def organization_list(self, p: dict[str, Any]) -> Any:
        all_fields = str(p.get("all_fields", "false")).lower() in ("true", "1")
        orgs = sorted(self.cat.organizations, key=lambda o: o.name)
        if not all_fields:
            return [o.name for o in orgs]
        return [organization_dict(o, sum(ds.organization == o.name for ds in self.cat.datasets)) for o in orgs]

    async def organization_show(self, p: dict[str, Any]) -> Any:
        try:
            org = self.cat.organization(str(p.get("id") or ""))
        except CityDataError as err:
            raise not_found("Organization not found") from err
        out = organization_dict(org, sum(ds.organization == org.name for ds in self.cat.datasets))
        if str(p.get("include_datasets", "false")).lower() in ("true", "1"):
            out["packages"] = [self._package(ds) for ds in self.cat.datasets if ds.organization == org.name]
        return out

    async def resource_show(self, p: dict[str, Any]) -> Any:
        rid = p.get("id")
        if not rid:
            raise validation(id="Missing value")
        try:
            ds, fmt = self.cat.by_resource(str(rid))
        except CityDataError as err:
            raise not_found("Resource was not found.") from err
        return resource_dict(ds, fmt, self.base_url, self._modified())

    async def datastore_search(self, p: dict[str, Any]) -> Any:
        rid = p.get("resource_id") or p.get("id")
        if not rid:
            raise validation(resource_id="Missing value")
        try:
            ds, _ = self.cat.by_resource(str(rid))
        except CityDataError:
            try:
                ds = self.cat.get(str(rid))     # data.go.th clients sometimes pass the package name
            except CityDataError as err:
                raise not_found(f'Resource "{rid}" was not found.') from err
        pub = await self.svc.published(ds.name)
        field_ids = [f.id for f in ds.fields]
        filters = _json_param(p, "filters") or {}
        if not isinstance(filters, dict):
            raise validation(filters="Not a JSON object")
        unknown = [k for k in filters if k not in field_ids and k != "_id"]
        if unknown:
            raise validation(filters=f'field "{unknown[0]}" not in table')
        fields_param = _json_param(p, "fields")
        if isinstance(fields_param, str):
            fields_param = [f.strip() for f in fields_param.split(",") if f.strip()]
        chosen = list(fields_param) if fields_param else ["_id", *field_ids]
        bad = [f for f in chosen if f not in field_ids and f != "_id"]
        if bad:
            raise validation(fields=f'field "{bad[0]}" not in table')
        limit = _int(p, "limit", 100, 0, MAX_LIMIT)
        offset = _int(p, "offset", 0)
        records = [{"_id": i + 1, **r} for i, r in enumerate(pub.records)]
        for key, want in filters.items():
            wanted = {str(v) for v in want} if isinstance(want, list) else {str(want)}
            records = [r for r in records if str(r.get(key)) in wanted or (r.get(key) is None and "None" in wanted)]
        q = _json_param(p, "q")
        if isinstance(q, dict):
            bad_q = [k for k in q if k not in field_ids]
            if bad_q:
                raise validation(q=f'field "{bad_q[0]}" not in table')
            for key, text in q.items():
                records = [r for r in records if str(text).lower() in str(r.get(key, "")).lower()]
        elif q:
            words = str(q).lower().split()
            records = [r for r in records if all(any(w in str(v).lower() for v in r.values()) for w in words)]
        sort = str(p.get("sort") or "").strip()
        if sort:
            for part in reversed([s.strip() for s in sort.split(",") if s.strip()]):
                name, _, direction = part.partition(" ")
                name = name.strip('"')
                if name not in field_ids and name != "_id":
                    raise validation(sort=f'field "{name}" not in table')
                desc = direction.strip().lower() == "desc"
                present = [r for r in records if r.get(name) is not None]
                missing = [r for r in records if r.get(name) is None]
                present.sort(key=_sort_key(name), reverse=desc)
                records = present + missing
        total = len(records)
        page = [{k: r.get(k) for k in chosen} for r in records[offset:offset + limit]]
        fields_out: list[dict[str, Any]] = [{"id": "_id", "type": "int"}] if "_id" in chosen else []
        fields_out += [{"id": f.id, "type": DATASTORE_TYPES[f.type], "info": {"label": f.label_en,
                                                                               "label_th": f.label_th,
                                                                               "notes": "suppressed under k"
                                                                               if f.count else ""}}
                       for f in ds.fields if f.id in chosen]
        link = f"/api/3/action/datastore_search?resource_id={ds.resource_id('csv')}"
        out: dict[str, Any] = {"include_total": True, "resource_id": ds.resource_id("csv"), "fields": fields_out,
                               "records_format": "objects", "records": page, "limit": limit, "total": total,
                               "_links": {"start": link, "next": f"{link}&offset={offset + limit}"},
                               "suppressed_cells": pub.suppressed}
        if offset:
            out["offset"] = offset
        if filters:
            out["filters"] = filters
        if q:
            out["q"] = q
        if sort:
            out["sort"] = sort
        return out

    async def help_show(self, p: dict[str, Any]) -> Any:
        name = str(p.get("name") or "")
        fn = ACTIONS.get(name)
        if fn is None:
            raise not_found(f"Action {name} not found")
        return (fn.__doc__ or name).strip()

    async def status_show(self, p: dict[str, Any]) -> Any:
        return {"ckan_version": "2.10.4", "site_title": "CityData Phuket open data", "site_url": self.base_url,
                "extensions": ["datastore", "scheming_datasets", "fluent", "dcat"], "citydata_version": __version__,
                "locale_default": "th"}


def _facet_values(ds: OpenDataset, field: str) -> list[str]:
    if field == "organization":
        return [ds.organization]
    if field == "tags":
        return list(ds.tags)
    if field == "res_format":
        return ["CSV", "GeoJSON", "Parquet"]
    if field == "license_id":
        return [str(ds.gd.get("license_id"))]
    raise CkanError(409, {"__type": "Search Query Error", "message": f"Search Query Error: cannot facet on {field}"})


def _sort_key(name: str) -> Callable[[dict[str, Any]], Any]:
    def key(record: dict[str, Any]) -> Any:
        return record[name]

    return key


def _haystack(ds: OpenDataset) -> str:
    return " ".join([ds.name, ds.title_th, ds.title_en, ds.notes_th, ds.notes_en, ds.organization, *ds.tags,
                     *(f.id for f in ds.fields)]).lower()


ACTIONS: dict[str, Callable[[Actions, dict[str, Any]], Awaitable[Any]]] = {
    name: getattr(Actions, name) for name in (
        "package_list", "package_show", "package_search", "organization_list", "organization_show",
        "resource_show", "datastore_search", "help_show", "status_show")}


async def call(service: OpenDataService, action: str, params: dict[str, Any], base_url: str) -> Any:
    fn = ACTIONS.get(action)
    if fn is None:
        raise CkanError(400, {"__type": "Bad request", "message": f"Bad request - Action name not known: {action}"})
    return await fn(Actions(service, base_url), params)
