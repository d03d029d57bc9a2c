"""The built-in planning analytics. Each is registered with its documentation (docs/analytics.md is written
from these definitions); each runs on SQLite and PostgreSQL (plain Core selects, grouping by hour of day in
Python in the display time zone)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from statistics import mean
from typing import Any

from sqlalchemy import Integer, and_, cast, distinct, extract, func, select

from citydata.analytics.model import WINDOW, Chart, Context, Param, Query, Result, register
from citydata.analytics.sources import (
    as_date,
    has_tables,
    subdistrict_of,
    tracking_hourly,
    wifi_area_daily,
    wifi_area_hourly,
)
from citydata.errors import NotFound
from citydata.incidents.schema import alerts, incidents
from citydata.sensorthings import schema as sta
from citydata.sensorthings.rollups_schema import observation_rollups as rollups
from citydata.store.schema import observations


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


async def _arrivals(ctx: Context, start: datetime, end: datetime) -> dict[str, Any]:
    """Arrivals for the window from the ``tourist_arrivals`` dataset: each month of the window pro rata, from
    the same month of the latest year the dataset has when it lacks that month (statistics lag a year)."""
    try:
        rows = await ctx.datasets.rows("tourist_arrivals")
    except NotFound:
        return {"arrivals": None, "arrivals_basis": "no tourist_arrivals dataset imported"}
    by_month: dict[tuple[int, int], int] = defaultdict(int)
    for r in rows:
        d = as_date(r["data"]["month"])
        by_month[(d.year, d.month)] += int(r["data"].get("arrivals") or 0)
    total, basis = 0.0, set()
    t = start
    while t < end:                                  # hour by hour, in local months: partial days pro rata
        local = t.astimezone(ctx.tz)
        key = (local.year, local.month)
        if key not in by_month:
            years = [y for (y, m) in by_month if m == local.month]
            key = (max(years), local.month) if years else key
        if key in by_month:
            days_in_month = (date(key[0] + key[1] // 12, key[1] % 12 + 1, 1) - date(key[0], key[1], 1)).days
            total += by_month[key] / (days_in_month * 24)
            basis.add(f"{key[0]}-{key[1]:02d}")
        t += timedelta(hours=1)
    return {"arrivals": round(total), "arrivals_basis": sorted(basis)}


# -- tourism ------------------------------------------------------------------------------------------------
HourSums = tuple[dict[tuple[str, int], float], dict[int, int], dict[datetime, float]]


def _fixed_offset_h(ctx: Context, start: datetime, end: datetime) -> int | None:
    """The display zone's UTC offset in whole hours when it is the same all through the window (and half a year
    on: no daylight saving), else None."""
    offsets = {start.astimezone(ctx.tz).utcoffset(), end.astimezone(ctx.tz).utcoffset(),
               (start + timedelta(days=182)).astimezone(ctx.tz).utcoffset()}
    if len(offsets) != 1:
        return None
    seconds = int(next(iter(offsets)).total_seconds())  # type: ignore[union-attr]
    return seconds // 3600 if seconds % 3600 == 0 else None


async def _hour_of_day_sums(ctx: Context, table: Any, area: Any, value: Any, where: list[Any], start: datetime,
                            end: datetime) -> HourSums:
    """Per (area, local hour of day): the sum of ``value``; per local hour of day: how many distinct hours
    have rows (anywhere); per hour: the city total. Grouped in SQL when the display zone has a fixed whole-hour
    offset (Asia/Bangkok), else row by row in Python."""
    hour = table.c.hour
    conds = [*where, hour >= start, hour < end]
    offset = _fixed_offset_h(ctx, start, end)
    sums: dict[tuple[str, int], float] = defaultdict(float)
    seen: dict[int, int] = defaultdict(int)
    hourly: dict[datetime, float] = defaultdict(float)
    if offset is not None:
        hod: Any = (cast(func.strftime("%H", hour), Integer) if ctx.store.dialect == "sqlite"
                    else cast(extract("hour", func.timezone("UTC", hour)), Integer))
        for r in await ctx.store.fetch_all(select(area.label("a"), hod.label("h"), func.sum(value).label("v"))
                                           .where(*conds).group_by(area, hod)):
            sums[(r["a"], (int(r["h"]) + offset) % 24)] += float(r["v"] or 0)
        for r in await ctx.store.fetch_all(select(hod.label("h"), func.count(distinct(hour)).label("n"))
                                           .where(*conds).group_by(hod)):
            seen[(int(r["h"]) + offset) % 24] += int(r["n"])
        for r in await ctx.store.fetch_all(select(hour, func.sum(value).label("v")).where(*conds).group_by(hour)):
            hourly[r["hour"]] += float(r["v"] or 0)
        return sums, seen, hourly
    hours: dict[int, set[datetime]] = defaultdict(set)
    for r in await ctx.store.fetch_all(select(area.label("a"), hour, value.label("v")).where(*conds)):
        h = ctx.local_hour(r["hour"])
        sums[(r["a"], h)] += float(r["v"] or 0)
        hours[h].add(r["hour"])
        hourly[r["hour"]] += float(r["v"] or 0)
    return sums, {h: len(v) for h, v in hours.items()}, hourly


async def _tourism(ctx: Context, p: dict[str, Any]) -> Result:
    start, end = p["start"], p["end"]
    empty: HourSums = ({}, {}, {})
    wifi, trk, sources = empty, empty, []
    if await has_tables(ctx.store, "wifi_footfall_area_hourly"):
        sources.append("wifi_footfall_area_hourly")
        w = wifi_area_hourly
        wifi = await _hour_of_day_sums(ctx, w, w.c.area, w.c.devices, [w.c.level == "subdistrict", w.c.area != ""],
                                       start, end)
    if await has_tables(ctx.store, "tracking_hourly"):
        sources.append("tracking_hourly")
        t = tracking_hourly
        trk = await _hour_of_day_sums(ctx, t, t.c.subdistrict, t.c.travellers, [t.c.subdistrict != "outside"],
                                      start, end)

    def per_hour(src: HourSums, code: str, hour: int) -> float | None:
        hours = src[1].get(hour, 0)      # that hour of day on the days the source has data for it
        return _r(src[0].get((code, hour), 0.0) / hours) if hours else None

    rows = [{**ctx.area(code), "hour": hour, "wifi_devices": per_hour(wifi, code, hour),
             "travellers": per_hour(trk, code, hour)} for code, hour in sorted(set(wifi[0]) | set(trk[0]))]
    hourly: dict[datetime, dict[str, float]] = defaultdict(lambda: {"wifi_devices": 0.0, "travellers": 0.0})
    for h, v in wifi[2].items():
        hourly[h]["wifi_devices"] = v
    for h, v in trk[2].items():
        hourly[h]["travellers"] = v
    days = max(1.0, (end - start).total_seconds() / 86400)
    arrivals = await _arrivals(ctx, start, end)
    wifi_total = sum(x["wifi_devices"] for x in hourly.values())
    meta = {**arrivals, "sources": sources, "days": round(days, 2),
            "wifi_device_hours_per_arrival": (round(wifi_total / arrivals["arrivals"], 3)
                                              if arrivals.get("arrivals") else None)}
    series = {"city": [{"hour": h.isoformat(), **{k: round(x, 1) for k, x in v.items()}}
                       for h, v in sorted(hourly.items())]}
    return Result("tourism_density", p, ["subdistrict", "name_en", "name_th", "hour", "wifi_devices", "travellers"],
                  rows, series, meta)


register(Query(
    "tourism_density", "Tourism density by hour and sub-district",
    "Mean unique WiFi devices (wifi_footfall_area_hourly, level subdistrict) and tracked travellers "
    "(tracking_hourly) per sub-district and local hour of day over the window: the sum for that hour of day "
    "divided by the number of days on which the source has data for that hour anywhere in the city (a "
    "sub-district without rows then counts as zero; an hour the source never covered is null). Set against "
    "the tourist arrivals of the same period from the imported `tourist_arrivals` dataset (monthly figures "
    "pro rata; the same month of the latest year when the statistics lag): `meta.arrivals`, "
    "`meta.wifi_device_hours_per_arrival`.",
    ("wifi_footfall_area_hourly", "tracking_hourly", "dataset:tourist_arrivals"), WINDOW,
    Chart("heatmap", "hour", "name_en", "wifi_devices", title="WiFi devices per hour of day"), _tourism))


async def _hourly(ctx: Context, streams: list[int], start: datetime, end: datetime,
                  ) -> list[tuple[int, datetime, float, float | None, float | None]]:
    """(stream, hour, sum, min, max) per stream and hour: the hourly rollups, and for the hours after a
    stream's newest rolled-up hour (not rolled up yet: the rollup runs with a lag) the raw Observations."""
    if not streams:
        return []
    out = [(int(r["datastream_id"]), r["bucket_start"], float(r["sum"]), r["min"], r["max"])
           for r in await ctx.store.fetch_all(
               select(rollups.c.datastream_id, rollups.c.bucket_start, rollups.c.sum, rollups.c.min, rollups.c.max)
               .where(and_(rollups.c.period == "hour", rollups.c.bucket_start >= start,
                           rollups.c.bucket_start < end, rollups.c.datastream_id.in_(streams))))]
    rolled: dict[int, datetime] = {}
    for stream, hour, *_ in out:
        rolled[stream] = max(rolled.get(stream, hour), hour)
    since = {s: rolled[s] + timedelta(hours=1) if s in rolled else start for s in streams}
    o = observations
    raw: dict[tuple[int, datetime], list[float]] = defaultdict(list)
    for r in await ctx.store.fetch_all(
            select(o.c.datastream_id, o.c.phenomenon_time, o.c.result_number)
            .where(and_(o.c.datastream_id.in_(streams), o.c.phenomenon_time >= min(since.values()),
                        o.c.phenomenon_time < end, o.c.result_number.is_not(None)))):
        stream = int(r["datastream_id"])
        if r["phenomenon_time"] >= since[stream]:
            hour = r["phenomenon_time"].replace(minute=0, second=0, microsecond=0)
            raw[(stream, hour)].append(float(r["result_number"]))
    out += [(stream, hour, sum(v), min(v), max(v)) for (stream, hour), v in raw.items()]
    return out


# -- flood ----------------------------------------------------------------------------------------------------
RAIN = ("precipitation", "rainfall", "rain")
LEVEL = ("water_level",)


async def _flood(ctx: Context, p: dict[str, Any]) -> Result:
    from citydata.rules.catalogue import Catalogue

    start, end = p["start"], p["end"]
    catalogue = Catalogue(ctx.store, ctx.geography)
    await catalogue.load_all()
    ds = sta.datastreams
    ids = [int(r["id"]) for r in await ctx.store.fetch_all(select(ds.c.id))]
    kinds: dict[int, tuple[str, str]] = {}          # stream -> (rain|level, catchment)
    for i in ids:
        info = catalogue.cached(i)
        if info is None or info.observed_property not in RAIN + LEVEL:
            continue
        catchment = str(info.thing_properties.get("catchment") or (info.zone_id or "").split(":")[-1] or "")
        if catchment:
            kinds[i] = ("rain" if info.observed_property in RAIN else "level", catchment)
    per: dict[tuple[str, datetime], dict[str, list[float]]] = defaultdict(lambda: {"rain": [], "level": [],
                                                                                    "rise": []})
    for stream, hour, total, low, high in await _hourly(ctx, list(kinds), start, end):
        kind, catchment = kinds[stream]
        cell = per[(catchment, hour)]
        if kind == "rain":
            cell["rain"].append(total)
        elif high is not None and low is not None:
            cell["level"].append(high)
            cell["rise"].append(high - low)
    summary: dict[str, dict[str, Any]] = {}
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (catchment, hour), cell in sorted(per.items()):
        rain = mean(cell["rain"]) if cell["rain"] else None
        level = max(cell["level"]) if cell["level"] else None
        rise = max(cell["rise"]) if cell["rise"] else None
        rain_x = rain is not None and rain >= p["rain_mm_h"]
        level_x = rise is not None and rise >= p["rise_m"]
        s = summary.setdefault(catchment, {"rain_total_mm": 0.0, "rain_max_mm_h": 0.0, "level_max_m": None,
                                           "hours_rain_exceeded": 0, "hours_level_exceeded": 0, "_rain": set(),
                                           "_level": set()})
        s["rain_total_mm"] += rain or 0.0
        s["rain_max_mm_h"] = max(s["rain_max_mm_h"], rain or 0.0)
        if level is not None:
            s["level_max_m"] = level if s["level_max_m"] is None else max(s["level_max_m"], level)
        if rain_x:
            s["hours_rain_exceeded"] += 1
            s["_rain"].add(hour)
        if level_x:
            s["hours_level_exceeded"] += 1
            s["_level"].add(hour)
        series[catchment].append({"hour": hour.isoformat(), "rain_mm": _r(rain), "level_m": _r(level, 3),
                                  "rise_m": _r(rise, 3), "rain_exceeded": rain_x, "level_exceeded": level_x})
    rows_out = []
    for catchment, s in sorted(summary.items()):
        # at risk: a level exceedance in the hour of a rain exceedance or within the 2 hours after it
        at_risk = {h for h in s.pop("_level") for lag in range(3) if h - timedelta(hours=lag) in s["_rain"]}
        s.pop("_rain")
        rows_out.append({**ctx.area(catchment), "catchment": catchment, **{k: (_r(v) if isinstance(v, float) else v)
                                                                         for k, v in s.items()},
                         "hours_at_risk": len(at_risk)})
    return Result("flood_risk", p, ["subdistrict", "name_en", "name_th", "catchment", "rain_total_mm",
                                    "rain_max_mm_h", "level_max_m", "hours_rain_exceeded", "hours_level_exceeded",
                                    "hours_at_risk"], rows_out, dict(series),
                  {"sources": ["observation_rollups (hour)", "sta_datastreams"], "streams": len(kinds)})


register(Query(
    "flood_risk", "Flood: rain against water level per catchment",
    "Hourly rollups (observation_rollups, period hour; raw Observations for the hours after a stream's newest "
    "rolled-up hour) of the rain gauges and water-level sensors, grouped by "
    "catchment: the Thing property `catchment` when set, else the sub-district containing the sensor. Per hour: "
    "rain = mean over the catchment's gauges of the hour's total; level = highest level; rise = largest "
    "max-min within the hour. A rain exceedance is rain >= rain_mm_h, a level exceedance a rise >= rise_m "
    "(the thresholds of the flash-flood rule). Hours at risk: level exceedances in the hour of a rain "
    "exceedance or within the 2 hours after it. `series` holds each catchment's hourly values.",
    ("observation_rollups", "sta_datastreams", "sta_observed_properties", "sta_locations"),
    (*WINDOW, Param("rain_mm_h", "number", 30.0, "Rain exceedance threshold (mm in one hour)."),
     Param("rise_m", "number", 0.3, "Water-level rise exceedance threshold (m within one hour).")),
    Chart("timeseries", "hour", "rain_mm", "level_m", title="Rain (mm/h) and water level (m)"), _flood))


# -- safety ---------------------------------------------------------------------------------------------------
async def _safety(ctx: Context, p: dict[str, Any]) -> Result:
    start, end = p["start"], p["end"]
    cells: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: {"incidents": 0, "cctv_hits": 0})
    unplaced = 0
    for r in await ctx.store.fetch_all(select(incidents.c.created_at, incidents.c.location, incidents.c.zone_id)
                                       .where(incidents.c.created_at >= start, incidents.c.created_at < end)):
        code = subdistrict_of(ctx.geography, r["zone_id"], r["location"])
        if code is None:
            unplaced += 1
            continue
        cells[(code, ctx.local_hour(r["created_at"]))]["incidents"] += 1
    for r in await ctx.store.fetch_all(select(alerts.c.opened_at, alerts.c.location, alerts.c.zone_id)
                                       .where(alerts.c.kind.like("vision.%"), alerts.c.opened_at >= start,
                                              alerts.c.opened_at < end)):
        code = subdistrict_of(ctx.geography, r["zone_id"], r["location"])
        if code is None:
            unplaced += 1
            continue
        cells[(code, ctx.local_hour(r["opened_at"]))]["cctv_hits"] += 1
    out = [{**ctx.area(code), "hour": hour, **v} for (code, hour), v in sorted(cells.items())]
    totals: dict[str, int] = defaultdict(int)
    for cell in out:
        totals[cell["subdistrict"]] += cell["incidents"] + cell["cctv_hits"]
    hotspots = [{**ctx.area(c), "events": n} for c, n in sorted(totals.items(), key=lambda kv: -kv[1])[:5]]
    return Result("safety_hotspots", p, ["subdistrict", "name_en", "name_th", "hour", "incidents", "cctv_hits"],
                  out, {}, {"sources": ["incidents", "alerts (kind vision.*)"], "hotspots": hotspots,
                             "not_placed": unplaced})


register(Query(
    "safety_hotspots", "Safety: incident and CCTV-hit hotspots by sub-district and hour",
    "Incidents (by creation time) and CCTV hits (alerts of kind vision.*, by opening time) per sub-district and "
    "local hour of day. The sub-district is the incident's or alert's zone when it is one, else the one "
    "containing its location; records with neither are counted in `meta.not_placed`. `meta.hotspots` lists the "
    "five sub-districts with the most events.",
    ("incidents", "alerts"), WINDOW,
    Chart("heatmap", "hour", "name_en", "incidents", title="Incidents per hour of day"), _safety))


# -- real estate ----------------------------------------------------------------------------------------------
async def _realestate(ctx: Context, p: dict[str, Any]) -> Result:
    start, end = p["start"], p["end"]
    prices: dict[str, list[float]] = defaultdict(list)
    try:
        for zone in await ctx.datasets.rows("land_price_zones"):
            value = zone["data"].get(p["price_column"])
            if zone["place_id"] and zone["place_id"].startswith("subdistrict:") and value is not None:
                prices[zone["place_id"].split(":")[1]].append(float(value))
    except NotFound:
        pass
    hotels: dict[str, list[int]] = defaultdict(list)
    try:
        for hotel in await ctx.datasets.rows("hotel_register"):
            if hotel["place_id"] and hotel["place_id"].startswith("subdistrict:"):
                hotels[hotel["place_id"].split(":")[1]].append(int(hotel["data"].get("rooms") or 0))
    except NotFound:
        pass
    footfall: dict[str, list[int]] = defaultdict(list)
    if await has_tables(ctx.store, "wifi_footfall_area_daily"):
        w = wifi_area_daily
        first, last = start.astimezone(ctx.tz).date(), end.astimezone(ctx.tz).date()
        for r in await ctx.store.fetch_all(select(w.c.area, w.c.day, w.c.devices).where(
                w.c.level == "subdistrict", w.c.area != "", w.c.day >= first, w.c.day < last)):
            footfall[r["area"]].append(int(r["devices"]))
    days = max(1, (end.astimezone(ctx.tz).date() - start.astimezone(ctx.tz).date()).days)
    rows = []
    for code in sorted(set(prices) | set(footfall) | set(hotels)):
        rows.append({**ctx.area(code), "land_price_thb_per_sq_wah": _r(mean(prices[code]), 0) if prices[code]
                     else None, "price_zones": len(prices[code]),
                     "wifi_devices_per_day": _r(sum(footfall[code]) / days) if footfall[code] else None,
                     "hotels": len(hotels[code]), "hotel_rooms": sum(hotels[code])})
    return Result("realestate_footfall", p, ["subdistrict", "name_en", "name_th", "land_price_thb_per_sq_wah",
                                             "price_zones", "wifi_devices_per_day", "hotels", "hotel_rooms"],
                  rows, {}, {"sources": ["dataset:land_price_zones", "dataset:hotel_register",
                                         "wifi_footfall_area_daily"]})


register(Query(
    "realestate_footfall", "Real estate: footfall against land-price zones",
    "Per sub-district: the mean appraised land price of its zones (imported `land_price_zones` dataset, column "
    "price_column), the mean unique WiFi devices per day over the window (wifi_footfall_area_daily, level "
    "subdistrict; days without data count as zero) and the registered hotels and rooms (`hotel_register`).",
    ("dataset:land_price_zones", "dataset:hotel_register", "wifi_footfall_area_daily"),
    (*WINDOW, Param("price_column", "text", "price_thb_per_sq_wah", "Price column of the land_price_zones "
                                                                     "dataset.")),
    Chart("scatter", "land_price_thb_per_sq_wah", "wifi_devices_per_day", label="name_en",
          title="Footfall against land price"), _realestate))
