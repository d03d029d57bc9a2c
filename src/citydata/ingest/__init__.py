"""Ingest adapters: MQTT (embedded broker and bridge), dead letters. HTTP routes live in citydata.api."""
