"""The open-data catalogue as data (``catalogue.yaml``): organizations and datasets with their Thai and
English titles, licence, update frequency, GD-Catalog metadata, source and the declared fields.

Loading validates the privacy rules that do not need the data: no declared field may be a personal field,
safety datasets must carry an approval, and every source must be an analytics query or an imported dataset."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from citydata.errors import ConfigError, NotFound

FIELD_TYPES = ("text", "int", "numeric", "date", "timestamp")
# field names that would carry personal data; never allowed in the open catalogue (see anonymise.py)
PERSONAL_FIELDS = frozenset({
    "name", "first_name", "last_name", "full_name", "passport", "passport_no", "id_card", "citizen_id",
    "national_id", "phone", "mobile", "email", "address", "birth_date", "date_of_birth", "dob", "age", "mac",
    "mac_address", "device", "device_id", "device_hash", "traveller_id", "person_id", "plate", "plate_text",
    "licence_plate", "face", "embedding", "ip", "ip_address", "lat", "lon", "latitude",
    "longitude",
})
NAMESPACE = uuid.UUID("6b0e4a0c-1f3e-4f0a-9a53-7c1d2a9e0d11")   # CKAN ids: uuid5 of the dataset name


@dataclass(frozen=True)
class Field:
    id: str
    type: str
    label_en: str
    label_th: str
    count: bool = False          # a count of people: cells under k are suppressed


@dataclass(frozen=True)
class Organization:
    name: str
    title: str
    title_en: str
    description: str

    @property
    def id(self) -> str:
        return str(uuid.uuid5(NAMESPACE, f"org:{self.name}"))


@dataclass(frozen=True)
class OpenDataset:
    name: str
    organization: str
    title_th: str
    title_en: str
    notes_th: str
    notes_en: str
    tags: tuple[str, ...]
    data_type: str
    objective: str
    update_frequency: dict[str, Any]
    source: dict[str, Any]
    fields: tuple[Field, ...]
    area_field: str | None = None
    safety: bool = False
    approved: dict[str, Any] | None = None
    gd: dict[str, Any] = field(default_factory=dict)   # licence and GD-Catalog defaults merged in

    @property
    def id(self) -> str:
        return str(uuid.uuid5(NAMESPACE, self.name))

    def resource_id(self, fmt: str) -> str:
        return str(uuid.uuid5(NAMESPACE, f"{self.name}:{fmt}"))

    def field(self, fid: str) -> Field | None:
        return next((f for f in self.fields if f.id == fid), None)


@dataclass(frozen=True)
class Catalogue:
    organizations: tuple[Organization, ...]
    datasets: tuple[OpenDataset, ...]

    def get(self, name_or_id: str) -> OpenDataset:
        for ds in self.datasets:
            if name_or_id in (ds.name, ds.id):
                return ds
        raise NotFound(f"no open dataset {name_or_id!r}", code="dataset_not_found")

    def organization(self, name_or_id: str) -> Organization:
        for org in self.organizations:
            if name_or_id in (org.name, org.id):
                return org
        raise NotFound(f"no organization {name_or_id!r}", code="organization_not_found")

    def by_resource(self, resource_id: str) -> tuple[OpenDataset, str]:
        for ds in self.datasets:
            for fmt in ("csv", "geojson", "parquet"):
                if resource_id == ds.resource_id(fmt):
                    return ds, fmt
        raise NotFound(f"no resource {resource_id!r}", code="resource_not_found")


def parse_catalogue(doc: dict[str, Any]) -> Catalogue:
    """Build and validate the catalogue; a ``ConfigError`` names the first problem."""
    try:
        orgs = tuple(Organization(o["name"], o["title"], o.get("title_en", o["title"]), o.get("description", ""))
                     for o in doc.get("organizations", []))
        defaults = dict(doc.get("defaults", {}))
        datasets = []
        for d in doc.get("datasets", []):
            fields = tuple(Field(f["id"], f["type"], f.get("label_en", f["id"]), f.get("label_th", f["id"]),
                                 bool(f.get("count", False))) for f in d["fields"])
            datasets.append(OpenDataset(
                name=d["name"], organization=d["organization"], title_th=d["title_th"], title_en=d["title_en"],
                notes_th=d.get("notes_th", ""), notes_en=d.get("notes_en", ""), tags=tuple(d.get("tags", [])),
                data_type=d.get("data_type", ""), objective=d.get("objective", ""),
                update_frequency=dict(d.get("update_frequency", {})), source=dict(d["source"]), fields=fields,
                area_field=d.get("area_field"), safety=bool(d.get("safety", False)), approved=d.get("approved"),
                gd={**defaults, **d.get("gd", {})}))
    except (KeyError, TypeError) as err:
        raise ConfigError(f"open-data catalogue: missing or bad entry {err}") from err
    names = set()
    org_names = {o.name for o in orgs}
    for ds in datasets:
        if ds.name in names:
            raise ConfigError(f"open-data catalogue: duplicate dataset {ds.name}")
        names.add(ds.name)
        if ds.organization not in org_names:
            raise ConfigError(f"open-data catalogue: {ds.name}: unknown organization {ds.organization}")
        if ds.safety and not (ds.approved and ds.approved.get("by")):
            raise ConfigError(f"open-data catalogue: {ds.name} is safety data and has no approval "
                              f"(approved: {{by: ..., date: ...}})")
        if not ("analytics" in ds.source) ^ ("dataset" in ds.source):
            raise ConfigError(f"open-data catalogue: {ds.name}: the source is one analytics query or one dataset")
        ids = [f.id for f in ds.fields]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"open-data catalogue: {ds.name}: duplicate field ids")
        for f in ds.fields:
            if f.type not in FIELD_TYPES:
                raise ConfigError(f"open-data catalogue: {ds.name}.{f.id}: unknown type {f.type}")
            if f.id.lower() in PERSONAL_FIELDS or f.id.startswith("_"):
                raise ConfigError(f"open-data catalogue: {ds.name}.{f.id} is a personal or reserved field")
        if ds.area_field and ds.area_field not in ids:
            raise ConfigError(f"open-data catalogue: {ds.name}: area_field {ds.area_field} is not a field")
    return Catalogue(orgs, tuple(datasets))


def load_catalogue(text: str | None = None) -> Catalogue:
    """The shipped catalogue (or one given as YAML text)."""
    if text is None:
        text = resources.files("citydata.opendata").joinpath("catalogue.yaml").read_text(encoding="utf-8")
    return parse_catalogue(yaml.safe_load(text))
