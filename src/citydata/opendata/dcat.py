"""DCAT-AP (JSON-LD) export of the open-data catalogue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from citydata.opendata.catalogue import Catalogue

CONTEXT = {"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/",
           "foaf": "http://xmlns.com/foaf/0.1/", "xsd": "http://www.w3.org/2001/XMLSchema#",
           "vcard": "http://www.w3.org/2006/vcard/ns#"}
FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
FREQ_CODES = {"hourly": "HOURLY", "daily": "DAILY", "weekly": "WEEKLY", "monthly": "MONTHLY",
              "annual": "ANNUAL", "irregular": "IRREG"}
MEDIA = (("csv", "CSV", "text/csv"), ("geojson", "GeoJSON", "application/geo+json"),
         ("parquet", "Parquet", "application/vnd.apache.parquet"))


def dcat_catalog(catalogue: Catalogue, base_url: str, modified: str) -> dict[str, Any]:
    base = base_url.rstrip("/")
    orgs = {o.name: o for o in catalogue.organizations}
    datasets = []
    for ds in catalogue.datasets:
        org = orgs[ds.organization]
        uri = f"{base}/api/3/action/package_show?id={ds.name}"
        datasets.append({
            "@id": uri, "@type": "dcat:Dataset", "dct:identifier": ds.id,
            "dct:title": [{"@value": ds.title_th, "@language": "th"}, {"@value": ds.title_en, "@language": "en"}],
            "dct:description": [{"@value": ds.notes_th, "@language": "th"},
                                {"@value": ds.notes_en, "@language": "en"}],
            "dcat:keyword": list(ds.tags),
            "dct:publisher": {"@id": f"{base}/api/3/action/organization_show?id={org.name}",
                              "@type": "foaf:Organization", "foaf:name": [
                                  {"@value": org.title, "@language": "th"},
                                  {"@value": org.title_en, "@language": "en"}]},
            "dct:license": {"@id": ds.gd.get("license_url") or ds.gd.get("license_id")},
            "dct:accrualPeriodicity": {"@id": FREQUENCY + FREQ_CODES.get(str(ds.update_frequency.get("dcat")),
                                                                         "IRREG")},
            "dct:spatial": {"@type": "dct:Location", "dct:identifier": "83", "foaf:name": "Phuket"},
            "dct:modified": {"@value": modified, "@type": "xsd:dateTime"},
            "dct:accessRights": ds.gd.get("accessible_condition"),
            "dcat:theme": ds.data_type,
            "dcat:distribution": [{
                "@id": f"{base}/api/3/action/resource_show?id={ds.resource_id(ext)}", "@type": "dcat:Distribution",
                "dct:title": f"{ds.title_en} ({label})", "dcat:downloadURL": {
                    "@id": f"{base}/api/v1/opendata/datasets/{ds.name}.{ext}"},
                "dcat:mediaType": mime, "dct:format": label,
                "dct:license": {"@id": ds.gd.get("license_url") or ds.gd.get("license_id")}}
                for ext, label, mime in MEDIA],
        })
    return {"@context": CONTEXT, "@id": f"{base}/api/v1/opendata/catalog.jsonld", "@type": "dcat:Catalog",
            "dct:title": [{"@value": "ข้อมูลเปิดจังหวัดภูเก็ต", "@language": "th"},
                          {"@value": "Phuket open data", "@language": "en"}],
            "dct:description": "Anonymised aggregates of the Phuket City Data Platform (CKAN-compatible API at "
                               "/api/3/action/).",
            "dct:language": ["th", "en"], "dct:modified": {"@value": modified, "@type": "xsd:dateTime"},
            "foaf:homepage": {"@id": f"{base}/api/3/action/package_list"}, "dcat:dataset": datasets}
