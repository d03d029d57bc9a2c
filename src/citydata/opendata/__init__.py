"""Open data: the catalogue as data, the CKAN-compatible action API, DCAT export, downloads (CSV, GeoJSON,
Parquet), anonymisation (aggregates only, small cells suppressed) and API keys with rate limits.
See docs/opendata.md."""
