"""Reference geography: the shipped city (package data), loading places into the store, and the in-memory
index that answers "which province is this point in".

    places = read_reference_city("phuket")
    geo = Geography.from_places(places)
    geo.province_at(98.30655, 8.10846).code   # "83"
"""

from citydata.geo.index import Geography
from citydata.geo.loader import (
    META_KEY,
    ensure_reference_city,
    load_places,
    place_from_row,
    place_to_row,
    read_places,
)
from citydata.geo.model import Place, buffer_m, distance_m, haversine_m, metres_per_degree
from citydata.geo.reference import (
    PARENT_TOLERANCE_M,
    available_cities,
    read_city_file,
    read_city_manifest,
    read_reference_city,
)

__all__ = [
    "META_KEY",
    "PARENT_TOLERANCE_M",
    "Geography",
    "Place",
    "available_cities",
    "buffer_m",
    "distance_m",
    "ensure_reference_city",
    "haversine_m",
    "load_places",
    "metres_per_degree",
    "place_from_row",
    "place_to_row",
    "read_city_file",
    "read_city_manifest",
    "read_places",
    "read_reference_city",
]
