"""The SensorThings capability as one object: reads, writes, the Observation ingest path, data arrays."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from citydata.errors import ValidationFailed
from citydata.sensorthings.ingest import Created, ObservationIngest
from citydata.sensorthings.model import DATASTREAM, OBSERVATION
from citydata.sensorthings.read import Reader
from citydata.sensorthings.serialize import prop_value, self_link
from citydata.sensorthings.write import EntityWriter

if TYPE_CHECKING:
    from sqlalchemy.engine import RowMapping

    from citydata.bus import Bus
    from citydata.clock import Clock
    from citydata.ops.metrics import Metrics
    from citydata.store import Store

DATA_ARRAY_COMPONENTS = {"id", "phenomenonTime", "result", "resultTime", "resultQuality", "validTime", "parameters",
                         "FeatureOfInterest/id"}


class SensorThings:
    def __init__(self, store: Store, bus: Bus, clock: Clock, metrics: Metrics, base_url: str, *,
                 page_size: int = 100, max_top: int = 10_000) -> None:
        self.store, self.bus, self.clock = store, bus, clock
        self.base_url = base_url.rstrip("/") + "/v1.1"
        self.page_size, self.max_top = page_size, max_top
        self.ingest = ObservationIngest(store, bus, clock, metrics, self.base_url)
        self.writer = EntityWriter(store, bus, clock, self.ingest, self.base_url)

    def reader(self, base_url: str | None = None) -> Reader:
        """A reader whose links use ``base_url`` (the URL the client called), default the configured one."""
        return Reader(self.store, base_url or self.base_url, page_size=self.page_size)

    # -- data arrays (18-088 section 14) ------------------------------------------------------------------------
    async def create_data_arrays(self, body: Any, *, base_url: str | None = None) -> list[str]:
        """``POST CreateObservations``: returns, per row, the new Observation's selfLink or "error"."""
        if not isinstance(body, list):
            raise ValidationFailed("the body must be an array of {Datastream, components, dataArray}",
                                   code="invalid_entity", field="body")
        out: list[str] = []
        base = base_url or self.base_url
        for i, block in enumerate(body):
            where = f"[{i}]"
            if not isinstance(block, dict):
                raise ValidationFailed(f"{where}: must be an object", code="invalid_entity", field=where)
            multi = "MultiDatastream" in block
            stream = block.get("MultiDatastream" if multi else "Datastream")
            if not isinstance(stream, dict) or not isinstance(stream.get("@iot.id"), int):
                raise ValidationFailed(f"{where}.Datastream: link it by @iot.id", code="invalid_entity",
                                       field=f"{where}.Datastream")
            components = block.get("components")
            rows = block.get("dataArray")
            if not isinstance(components, list) or not all(isinstance(c, str) for c in components):
                raise ValidationFailed(f"{where}.components: must be an array of names", code="invalid_entity",
                                       field=f"{where}.components")
            unknown = [c for c in components if c not in DATA_ARRAY_COMPONENTS]
            if unknown:
                raise ValidationFailed(f"{where}.components: unknown component {unknown[0]!r}",
                                       code="invalid_entity", field=f"{where}.components")
            if not isinstance(rows, list):
                raise ValidationFailed(f"{where}.dataArray: must be an array", code="invalid_entity",
                                       field=f"{where}.dataArray")
            bodies: list[Any] = []
            for row in rows:
                if not isinstance(row, list) or len(row) != len(components):
                    bodies.append(None)  # refused below, with the others kept
                    continue
                item: dict[str, Any] = {}
                for name, value in zip(components, row, strict=True):
                    if name == "FeatureOfInterest/id":
                        item["FeatureOfInterest"] = {"@iot.id": value}
                    elif name != "id":
                        item[name] = value
                bodies.append(item)
            results = await self.ingest.create(bodies, stream_id=int(stream["@iot.id"]), multi=multi,
                                               channel="data_array")
            out.extend(self_link(base, OBSERVATION, r.id) if isinstance(r, Created) else "error" for r in results)
        return out

    @staticmethod
    def data_array(rows: list[RowMapping], select: list[str] | None, base: str) -> dict[str, Any]:
        """``$resultFormat=dataArray``: Observations grouped by their stream, as component arrays."""
        components = [c for c in (select or ["id", "phenomenonTime", "resultTime", "result"])
                      if c in DATA_ARRAY_COMPONENTS or c == "id"]
        groups: OrderedDict[int, list[list[Any]]] = OrderedDict()
        for row in rows:
            values: list[Any] = []
            for c in components:
                if c == "id":
                    values.append(int(row["id"]))
                elif c == "FeatureOfInterest/id":
                    values.append(row["foi_id"])
                else:
                    prop = OBSERVATION.prop(c)
                    values.append(prop_value(prop, row) if prop is not None else None)
            groups.setdefault(int(row["datastream_id"]), []).append(values)
        value = []
        for stream, arrays in groups.items():
            value.append({"Datastream@iot.navigationLink": self_link(base, DATASTREAM, stream),
                          "components": components, "dataArray@iot.count": len(arrays), "dataArray": arrays})
        return {"value": value}

