"""The settings model: every setting with its type, default, bounds and description (docs/configuration.md is
generated from it), its validators, and the checks of secrets and PII keys. ``loading.py`` builds it."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

ENV_PREFIX = "CITYDATA_"
# Variables with the prefix that are not settings: the config file path and test switches.
NON_SETTING_ENV = {"CITYDATA_CONFIG", "CITYDATA_REQUIRE_SERVICES", "CITYDATA_TEST_PG_URL",
                   "CITYDATA_TEST_NATS_URL", "CITYDATA_TEST_MQTT_URL"}
KNOWN_BAD_SECRETS = {"changeme", "change-me", "secret", "password", "default", "citydata", "test", "dev",
                     "insecure", "0" * 32, "x" * 32}
MIN_SECRET_LENGTH = 32


class Settings(BaseModel):
    """Every setting of the platform. Environment name: ``CITYDATA_`` + the field name in capitals."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    # -- where things live
    data_dir: Path = Field(Path("citydata-data"), title="Data directory",
                           description="Directory for the SQLite file, generated secrets and uploads.")
    city: str = Field("phuket", title="Reference city",
                      description="Name of the shipped reference city loaded on first start.")
    timezone: str = Field("Asia/Bangkok", title="Display time zone",
                          description="Time zone used for human-facing timestamps (storage is always UTC).")

    # -- store
    db_url: str | None = Field(None, title="Database URL",
                               description="sqlite:///PATH or postgresql://user@host:port/db. "
                                           "Default: sqlite:///<data_dir>/citydata.db.")
    db_schema: str | None = Field(None, title="PostgreSQL schema",
                                  description="Schema (search_path) to use on PostgreSQL; created if missing.")
    db_pool_size: int = Field(10, ge=1, le=200, title="Read pool size",
                              description="Connections in the read pool (PostgreSQL), or read connections (SQLite).")
    db_batch_rows: int = Field(1000, ge=1, le=100_000, title="Write batch rows",
                               description="The writer commits after this many queued rows ...")
    db_batch_ms: float = Field(10.0, ge=0.0, le=10_000, title="Write batch window (ms)",
                               description="... or after this many milliseconds, whichever comes first.")
    db_write_buffer: int = Field(100_000, ge=100, title="Write buffer rows",
                                 description="Rows that may wait for the database; beyond this writes get 503.")
    db_retry_s: float = Field(30.0, ge=0.0, title="Write retry budget (s)",
                              description="How long a write waits and retries an unreachable database "
                                          "before it is refused with 503.")
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL", title="SQLite synchronous", description="FULL makes every acknowledged commit durable (WAL).")
    sqlite_cache_mib: int = Field(64, ge=1, le=4096, title="SQLite writer page cache (MiB)",
                                  description="Page cache of each of the two writer connections.")
    sqlite_reader_cache_mib: int = Field(8, ge=1, le=4096, title="SQLite reader page cache (MiB)",
                                         description="Page cache of each read connection (db_pool_size of them, "
                                                     "+4 at peaks). A reader's cache is reset whenever another "
                                                     "connection has written, so a large one mostly holds memory.")

    # -- bus
    bus_url: str = Field("memory://", title="Event bus URL",
                         description="memory:// for the in-process bus, nats://host:port for NATS JetStream.")
    bus_queue_size: int = Field(10_000, ge=1, title="Bus queue size",
                                description="Bound of each in-process consumer queue (publishers wait when full).")
    bus_stream: str = Field("CITYDATA", title="JetStream stream name",
                            description="Name of the JetStream stream that carries the platform's events.")
    bus_subject_prefix: str = Field("citydata", title="Bus subject prefix",
                                    description="Prefix of every bus subject (lets several platforms share NATS).")

    # -- multi-node (NATS JetStream bus); see docs/scale.md
    node_role: Literal["all", "api", "ingest", "rules"] = Field(
        "all", title="Node role",
        description="What this node runs: api (HTTP only, no consumers), ingest (MQTT bridge and HTTP ingest), "
                    "rules (rules engines, geofence and timers, IOC consumers) or all. `citydata serve --role`.")
    node_id: str | None = Field(None, title="Node id",
                                description="Unique name of this node in the cluster (default: host-pid).")
    bus_partitions: int = Field(16, ge=0, le=1024, title="Bus partitions",
                                description="Key partitions of the NATS bus (events hashed by key; each partition "
                                            "is worked by one rules node at a time). 0: one unpartitioned log "
                                            "(one rules node). Fixed for the life of a stream.")
    bus_ack_wait_s: float = Field(30.0, ge=1.0, title="Bus acknowledgement wait (s)",
                                  description="A consumed event not acknowledged within this time is delivered "
                                              "again (also: how long the events a killed node had in hand wait "
                                              "before its successor gets them). Set when a consumer is created.")
    cluster_lease_s: float = Field(6.0, gt=0.5, title="Cluster lease (s)",
                                   description="Partition and leader leases in the JetStream key-value bucket "
                                               "expire this long after a node stops renewing them (a killed "
                                               "node's work is taken over after about this long).")

    # -- MQTT
    mqtt_url: str = Field("embedded://127.0.0.1:1883", title="MQTT URL",
                          description="embedded://HOST:PORT runs the in-process broker; mqtt://HOST:PORT uses "
                                      "an external broker. Use embedded://0.0.0.0:1883 to accept devices "
                                      "from the network.")
    mqtt_require_auth: bool = Field(True, title="MQTT authentication",
                                    description="On the embedded broker, require an API token as username "
                                                "or password.")
    mqtt_username: str | None = Field(None, title="MQTT username",
                                      description="Username for an external broker.")
    mqtt_password: SecretStr | None = Field(None, title="MQTT password",
                                            description="Password for an external broker.")
    mqtt_client_id: str = Field("citydata-platform", title="MQTT client id",
                                description="Client id of the platform's own MQTT session.")

    # -- HTTP
    http_host: str = Field("127.0.0.1", title="HTTP bind address", description="Address the API listens on.")
    http_port: int = Field(8000, ge=0, le=65535, title="HTTP port",
                           description="Port the API listens on (0 picks a free port).")
    public_url: str | None = Field(None, title="Public base URL",
                                   description="Base URL used in links (default: http://HOST:PORT).")
    read_public: bool = Field(True, title="Public reads",
                              description="Allow anonymous reads of non-personal data (sensor API, CAP feed).")
    cors_origins: list[str] = Field(default_factory=list, title="CORS origins",
                                    description="Origins allowed to call the API from a browser "
                                                "(comma-separated).")

    # -- security
    secret_key: SecretStr | None = Field(None, title="Signing key",
                                         description="Key that signs sessions (JWT) and hashes. Generated into "
                                                     "<data_dir>/secret_key on first start when unset.")
    pii_keys: SecretStr | None = Field(None, title="Personal-data keys",
                                       description="AES-256-GCM keys for personal data, 'kid:base64key' "
                                                   "comma-separated, newest first (rotation). Generated into "
                                                   "<data_dir>/pii_keys on first start when unset.")
    jwt_ttl_s: int = Field(8 * 3600, ge=60, title="Session lifetime (s)",
                           description="Lifetime of a login session token.")
    admin_password: SecretStr | None = Field(None, title="Initial admin password",
                                             description="Password of the 'admin' user created on first start. "
                                                         "Generated into <data_dir>/admin_password when unset.")
    login_max_failures: int = Field(5, ge=1, title="Login failures before throttling",
                                    description="Failed logins or token guesses per client per minute "
                                                "before 429.")

    # -- operations
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", title="Log level",
                                                                   description="Minimum level logged.")
    log_format: Literal["json", "text"] = Field("json", title="Log format",
                                                description="json (one object a line) or text.")
    shutdown_grace_s: float = Field(10.0, ge=0.0, title="Shutdown grace (s)",
                                    description="Time given to flush queued writes on shutdown.")
    heartbeat_silence_s: int = Field(900, ge=10, title="Device silence (s)",
                                     description="A device with no heartbeat for this long is reported silent.")
    gc_young_threshold: int = Field(
        10_000, ge=0, title="Garbage collector young threshold",
        description="Net container allocations between young collections in citydata serve and demo (0 keeps "
                    "Python's 700). Higher: objects of a request die young instead of being promoted, and full "
                    "collections, which pause the event loop, come far less often (docs/architecture.md).")

    # -- sensor data retention
    sta_raw_retention_days: int = Field(
        0, ge=0, title="Raw observation retention (days)",
        description="Numeric Observations older than this many days are purged once rolled up into the hourly "
                    "and daily aggregates (the latest Observation of each stream is always kept). 0 keeps raw "
                    "Observations forever (rollups are still computed).")
    sta_rollup_interval_s: int = Field(
        3600, ge=0, title="Rollup interval (s)",
        description="How often the platform rolls up Observations and purges expired raw ones. 0 disables the "
                    "periodic task (run `citydata db purge` instead).")
    sta_rollup_lag_s: int = Field(
        600, ge=0, title="Rollup lag (s)",
        description="Hours are rolled up once they ended this long ago, so slightly late Observations are "
                    "included.")
    sta_rollup_day_offset_h: int = Field(
        7, ge=-12, le=14, title="Daily rollup UTC offset (h)",
        description="Daily rollups start at local midnight at this UTC offset (Phuket: 7).")
    sta_purge_chunk: int = Field(
        5000, ge=1, le=1_000_000, title="Purge chunk (rows)",
        description="Raw Observations deleted per write transaction by the retention purge.")

    # -- IOC (alerts, incidents, CAP warnings, live stream, notifications)
    ioc_cap_sender: str = Field("ioc@phuket.citydata.local", pattern=r"^[^\s,<&]+$", title="CAP sender",
                                description="The CAP <sender> of public warnings (no spaces, commas, < or &).")
    ioc_cap_sender_name: str = Field("Phuket Intelligent Operations Center", title="CAP sender name",
                                     description="The human-readable <senderName> of CAP warnings.")
    ioc_cap_status: Literal["Actual", "Exercise", "System", "Test"] = Field(
        "Actual", title="CAP status", description="The CAP <status> of issued warnings (Test or Exercise "
                                                  "for drills).")
    ioc_stream_heartbeat_s: float = Field(15.0, gt=0, le=300, title="SSE heartbeat (s)",
                                          description="Seconds between heartbeat comments on /api/v1/stream.")
    ioc_stream_buffer: int = Field(1000, ge=10, le=100_000, title="SSE resume buffer",
                                   description="Alert and incident events kept for Last-Event-ID resume.")
    ioc_stream_client_queue: int = Field(256, ge=8, le=10_000, title="SSE client queue",
                                         description="Events queued per stream client; a client that falls "
                                                     "this far behind is disconnected.")
    ioc_sla_check_s: float = Field(15.0, gt=0, title="SLA check interval (s)",
                                   description="How often incident SLA deadlines are checked.")
    ioc_escalation_agencies: str = Field("", pattern=r"^[a-z0-9_,\s-]*$", title="Escalation agencies",
                                         description="Agencies notified, besides the assigned ones, when an "
                                                     "incident breaches its SLA (comma-separated ids).")
    ioc_delivery_attempts: int = Field(6, ge=1, le=50, title="Notification attempts",
                                       description="Attempts per notification before it is dead-lettered.")
    ioc_delivery_backoff_s: float = Field(5.0, gt=0, title="Notification backoff (s)",
                                          description="First retry delay; doubled after each failure.")
    ioc_delivery_backoff_max_s: float = Field(900.0, gt=0, title="Notification backoff cap (s)",
                                              description="Longest delay between two attempts.")
    ioc_delivery_timeout_s: float = Field(10.0, gt=0, le=120, title="Notification timeout (s)",
                                          description="Time limit of one webhook, SMTP or LINE attempt.")
    ioc_smtp_host: str | None = Field(None, title="SMTP host",
                                      description="SMTP server for e-mail notifications (unset: e-mail off).")
    ioc_smtp_port: int = Field(25, ge=1, le=65535, title="SMTP port", description="SMTP server port.")
    ioc_smtp_starttls: bool = Field(False, title="SMTP STARTTLS", description="Use STARTTLS on the connection.")
    ioc_smtp_username: str | None = Field(None, title="SMTP username", description="SMTP login (optional).")
    ioc_smtp_password: SecretStr | None = Field(None, title="SMTP password", description="SMTP password.")
    ioc_smtp_from: str = Field("ioc@citydata.local", title="E-mail sender",
                               description="From address of notification e-mails.")
    ioc_line_api_url: str = Field("https://api.line.me", title="LINE API base URL",
                                  description="Base URL of the LINE Messaging API (push endpoint "
                                              "/v2/bot/message/push).")
    ioc_line_channel_token: SecretStr | None = Field(None, title="LINE channel access token",
                                                     description="LINE Messaging API channel access token "
                                                                 "(unset: LINE off).")
    ioc_attachment_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, title="Attachment size limit",
                                          description="Largest incident attachment accepted, in bytes.")

    # -- tourist tracking
    tracking_report_interval_s: int = Field(
        1800, ge=60, title="Tracker report interval (s)",
        description="How often the tourist app reports its location (the Sandbox rule: every 30 minutes).")
    tracking_overdue_grace_s: int = Field(
        600, ge=0, title="Overdue grace (s)",
        description="A traveller with no report for 2 report intervals plus this grace is overdue (silent "
                    "tracker).")
    tracking_overdue_check_s: float = Field(
        30.0, gt=0, title="Overdue check period (s)",
        description="How often the silent-tracker timer looks for overdue travellers.")
    tracking_tolerance_m: float = Field(
        1500.0, ge=0, title="Province fence tolerance (m)",
        description="The home province is grown by this many metres before a fix counts as outside, so the "
                    "piers, the Sarasin bridge and the coastline-generalised polygon never cause false exits.")
    tracking_dwell_s: int = Field(
        600, ge=0, title="Geofence dwell (s)",
        description="A fence state change is confirmed only once it held this long without a contradicting "
                    "fix, so drift never flaps.")
    tracking_still_outside_s: int = Field(
        3600, ge=60, title="Still-outside period (s)",
        description="While a traveller stays outside the province, a tracking.still_outside event repeats "
                    "this often.")
    tracking_sea_max_m: float = Field(
        5000.0, ge=0, title="Nearest province at sea (m)",
        description="A fix outside every province is said to be in the nearest province within this many "
                    "metres, else 'at sea'.")
    tracking_lateness_s: int = Field(
        7200, ge=0, title="Lateness window (s)",
        description="A fix older than the traveller's newest processed fix is stored, and replayed through the "
                    "geofence only when it is at most this much older.")
    tracking_window_fixes: int = Field(
        64, ge=1, le=10_000, title="Fixes kept per traveller",
        description="Most recent fixes the geofence keeps per traveller to replay late ones (within the lateness "
                    "window); a late fix older than one already dropped from them is stored, flagged late, and not "
                    "replayed. Bounds memory whatever the ping rate (a fix every 30 minutes keeps 4 in two hours).")
    tracking_k: int = Field(
        10, ge=1, title="k-anonymity threshold",
        description="Density and aggregate counts under k are suppressed for every role below police, and "
                    "never kept after the exact pings are purged.")
    tracking_retention_days: int = Field(
        14, ge=0, title="Ping retention after departure (days)",
        description="Exact location reports are purged this many days after departure; only hourly "
                    "per-sub-district counts of at least k remain.")
    tracking_identity_retention_days: int = Field(
        30, ge=0, title="Identity retention after departure (days)",
        description="The encrypted identity of a departed traveller is deleted this many days after departure.")
    tracking_max_skew_s: int = Field(
        300, ge=0, title="Future time skew (s)",
        description="A report time further in the future than this is rejected.")
    tracking_max_speed_kmh: float = Field(
        300.0, gt=0, title="Impossible speed (km/h)",
        description="A fix implying a faster move from the previous accepted fix is stored flagged and never "
                    "moves the geofence state.")
    tracking_max_batch: int = Field(
        500, ge=1, le=100_000, title="Pings per request",
        description="Most location reports accepted in one request.")
    tracking_enrol_ttl_s: int = Field(
        7 * 86400, ge=60, title="Enrolment code lifetime (s)",
        description="How long the one-time app enrolment code given at the checkpoint stays valid.")
    tracking_home_province: str = Field(
        "83", pattern=r"^[0-9]{2}$", title="Home province",
        description="DOPA code of the province whose exit is alerted (Phuket: 83).")
    tracking_direct_alerts: bool = Field(
        False, title="Tracking alerts without rules",
        description="Raise alert.raised for tracking.left_zone, tracking.overdue and tracking.screening_failed "
                    "directly from the tracking events, for deployments that run without the rules engine "
                    "(the Phuket rule pack covers them).")

    # -- open data (docs/opendata.md)
    opendata_k: int = Field(
        10, ge=2, title="Open-data k (smallest published count)",
        description="Counts of people under k in open datasets are suppressed (published as null).")
    opendata_require_key: bool = Field(
        False, title="Open data needs a key",
        description="Refuse anonymous open-data requests (CKAN API, downloads); otherwise they get the "
                    "anonymous rate limit per client address.")
    opendata_key_rate_per_min: int = Field(
        600, ge=1, le=100_000, title="Open-data key rate limit",
        description="Default requests per minute for a new open-data API key (each key may have its own).")
    opendata_anonymous_rate_per_min: int = Field(
        60, ge=1, le=100_000, title="Anonymous open-data rate limit",
        description="Requests per minute for an anonymous client address.")
    opendata_cache_s: float = Field(
        300.0, ge=0, title="Open-data cache (s)",
        description="How long a published dataset's rows are reused before they are computed again.")

    # -- WiFi footfall (docs/wifi.md)
    wifi_enabled: bool = Field(True, title="WiFi footfall",
                               description="Run the hotspot registry, WiFi session ingest and footfall rollups.")
    wifi_seed_hotspots: bool = Field(True, title="Load the shipped hotspots",
                                     description="Load the 1,000 Phuket hotspots shipped with CityData into an "
                                                 "empty registry on first start.")
    wifi_rotation_days: int = Field(1, ge=1, le=31, title="MAC pseudonym rotation (days)",
                                    description="Days (local, CITYDATA_TIMEZONE) one MAC pseudonym key is used; "
                                                "new-vs-returning is counted within this period.")
    wifi_session_timeout_s: int = Field(7200, ge=60, title="WiFi session timeout (s)",
                                        description="An open session with no record for this long is closed at "
                                                    "its last record.")
    wifi_max_open_sessions: int = Field(100_000, ge=1, title="WiFi sessions kept in memory",
                                        description="Most open WiFi sessions tracked (and most closed ones "
                                                    "remembered for repeats); past it the session heard from least "
                                                    "recently is closed, ended by eviction (counted in "
                                                    "citydata_wifi_session_evictions_total).")
    wifi_max_session_s: int = Field(86_400, ge=60, title="Longest WiFi session (s)",
                                    description="How far back a disassociation or Acct-Session-Time may reach.")
    wifi_max_skew_s: int = Field(300, ge=0, title="WiFi clock skew allowed (s)",
                                 description="Records stamped further in the future are dead-lettered.")
    wifi_max_age_days: int = Field(7, ge=1, title="Oldest WiFi record accepted (days)",
                                   description="Older records are dead-lettered (too late for the rollups).")
    wifi_flush_s: float = Field(5.0, ge=0, title="WiFi rollup interval (s)",
                                description="How often presence is written and the touched hours' rollups are "
                                            "rebuilt. 0 disables the timer (tests flush by hand).")
    wifi_daily_every_s: float = Field(60.0, ge=0, title="WiFi daily rollup interval (s)",
                                      description="How often the touched days' rollups are rebuilt.")
    wifi_raw_retention_days: int = Field(30, ge=0, title="WiFi raw retention (days)",
                                         description="Pseudonymised events and per-device presence are deleted "
                                                     "after this many days (rollups are kept). 0 keeps them.")
    wifi_purge_interval_s: float = Field(3600.0, ge=0, title="WiFi purge interval (s)",
                                         description="How often expired WiFi events are purged. 0 disables it.")
    wifi_syslog_host: str = Field("127.0.0.1", title="WiFi syslog listen address",
                                  description="Address of the syslog-style UDP/TCP listeners (0.0.0.0 for APs "
                                              "and RADIUS servers on the network).")
    wifi_syslog_udp_port: int = Field(0, ge=0, le=65535, title="WiFi syslog UDP port",
                                      description="UDP port for AP / controller / RADIUS syslog lines (0: off; "
                                                  "5514 is a common unprivileged choice).")
    wifi_syslog_tcp_port: int = Field(0, ge=0, le=65535, title="WiFi syslog TCP port",
                                      description="TCP port for newline- or octet-framed syslog lines (0: off).")
    wifi_syslog_format: str = Field("syslog", pattern=r"^[a-z0-9_]+$", title="WiFi syslog format",
                                    description="Parser for the listener's lines: syslog (detect hostapd, Cisco, "
                                                "Aruba or RADIUS pairs per line) or one parser name.")
    wifi_max_lines: int = Field(50_000, ge=1, title="WiFi lines per request",
                                description="Most lines accepted in one POST /api/v1/wifi/events.")

    # -- vision: CCTV analytics (docs/vision.md)
    vision_enabled: bool = Field(True, title="CCTV analytics",
                                 description="Run the camera registry, frame sources and the face/plate/traffic "
                                             "analytics on this node.")
    vision_workers: int = Field(-1, ge=-1, le=64, title="Vision worker processes",
                                description="Processes running the face and plate models: -1 one per CPU core, "
                                            "0 one thread inside the platform process.")
    vision_fps: float = Field(5.0, gt=0, le=60, title="Frames analysed per second",
                              description="Frames sampled per second from each camera stream.")
    vision_queue_size: int = Field(4, ge=1, le=1000, title="Frame queue per camera",
                                   description="Frames waiting for analysis per camera; when full the oldest is "
                                               "dropped and counted (events are never dropped).")
    vision_face_threshold: float = Field(0.07, gt=0, lt=1, title="Face match threshold",
                                         description="Default cosine distance at or below which a face matches a "
                                                     "watchlist subject (each watchlist can set its own).")
    vision_min_plate_frames: int = Field(3, ge=1, le=50, title="Plate consensus frames",
                                         description="Reads of one vehicle's plate combined before it is decided "
                                                     "(fewer when the vehicle leaves the view first).")
    vision_plate_regions: list[str] = Field(
        default_factory=lambda: ["th", "my"], title="Plate regions",
        description="Plate formats expected (comma-separated): th (Thai two-line plates), my (Malaysia), sk, cz, uk, "
                    "de, or eu for the four European ones. Latin reads are decoded to the most probable text fitting "
                    "one of them (docs/vision.md).")
    vision_plate_track_ttl_s: float = Field(2.0, gt=0, title="Plate track timeout (s)",
                                            description="A vehicle's plate unseen this long ends its track.")
    vision_reconnect_max_s: float = Field(60.0, ge=1, title="Stream reconnect backoff cap (s)",
                                          description="Longest wait between reconnect attempts to a camera.")
    vision_hit_retention_days: int = Field(30, ge=1, title="Face hit retention (days)",
                                           description="Watchlist hits, their encrypted snapshot and embedding are "
                                                       "deleted this many days after the hit.")
    vision_sighting_retention_days: int = Field(90, ge=1, title="Plate sighting retention (days)",
                                                description="Keyed plate hashes (traffic counts) are deleted "
                                                            "after this many days.")

    # -- web: the IOC dashboard and the tourist app
    map_tile_url: str = Field(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png", max_length=500, title="Map tile URL",
        description="XYZ raster tile URL template for the IOC and tourist maps ({z}/{x}/{y}, optional {s}). An "
                    "empty value draws the vector layers on a plain background (closed networks); when tiles "
                    "fail to load the map stays usable the same way.")
    map_tile_attribution: str = Field(
        "&copy; OpenStreetMap contributors", max_length=500, title="Map tile attribution",
        description="Attribution shown on the map for the tile layer (HTML).")
    reports_photo_max_bytes: int = Field(
        8 * 1024 * 1024, ge=10_000, le=50 * 1024 * 1024, title="Report photo size limit",
        description="Largest photo accepted with a tourist problem report, in bytes (before re-encoding).")
    reports_per_client_hour: int = Field(
        20, ge=1, title="Reports per client and hour",
        description="Problem reports accepted from one client address per hour; more are refused with 429.")
    reports_retention_days: int = Field(
        90, ge=0, title="Report retention (days)",
        description="The text and photo of a problem report are deleted this many days after it was made "
                    "(category, place and time are kept for statistics). 0 keeps them.")
    reports_purge_interval_s: float = Field(
        3600.0, ge=0, title="Report purge interval (s)",
        description="How often expired report texts and photos are purged. 0 disables the periodic task.")

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @field_validator("pii_keys")
    @classmethod
    def _valid_pii_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_pii_keys(value.get_secret_value())
        return value

    @field_validator("db_url")
    @classmethod
    def _known_db(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:", "postgresql:", "postgres:",
                                                        "postgresql+asyncpg:")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("bus_url")
    @classmethod
    def _known_bus(cls, value: str) -> str:
        if not value.startswith(("memory://", "nats://", "tls://")):
            raise ValueError("must be memory:// or nats://host:port")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _known_mqtt(cls, value: str) -> str:
        if not value.startswith(("embedded://", "mqtt://", "mqtts://", "none://")):
            raise ValueError("must be embedded://HOST:PORT, mqtt://HOST:PORT or none://")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("vision_plate_regions", mode="before")
    @classmethod
    def _split_regions(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip().lower() for v in value.split(",") if v.strip()]
        return value

    @field_validator("vision_plate_regions")
    @classmethod
    def _known_regions(cls, value: list[str]) -> list[str]:
        from citydata.vision.plate_regions import region_formats

        if not value:
            raise ValueError("name at least one plate region")
        region_formats(value)  # raises ValueError naming the unknown region and the known ones
        return value

    # -- derived values
    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.data_dir / 'citydata.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    def public_dict(self) -> dict[str, Any]:
        """Settings for display: secrets masked, derived URLs resolved."""
        out: dict[str, Any] = json.loads(self.model_dump_json())
        for name, field in Settings.model_fields.items():
            if field.annotation in (SecretStr, SecretStr | None) and getattr(self, name) is not None:
                out[name] = "********"
        out["db_url"] = _mask_url(self.database_url)
        return out


def _mask_url(url: str) -> str:
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = url.split("//", 1)
        creds, host = rest.split("@", 1)
        return f"{scheme}//{creds.split(':', 1)[0]}:****@{host}"
    return url


def check_secret(value: str) -> None:
    """Refuse weak or well-known secrets."""
    if value.lower() in KNOWN_BAD_SECRETS or len(set(value)) < 8:
        raise ValueError("is a known or trivial value; generate one (e.g. `openssl rand -base64 48`)")
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")


def parse_pii_keys(value: str) -> list[tuple[str, bytes]]:
    """Parse 'kid:base64key,...' into (kid, 32-byte key) pairs, newest first."""
    keys: list[tuple[str, bytes]] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, b64 = part.partition(":")
        if not sep or not kid.isalnum():
            raise ValueError("each key must look like 'kid:base64key' with an alphanumeric kid")
        try:
            key = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        except (binascii.Error, ValueError) as err:
            raise ValueError(f"key {kid!r} is not valid base64") from err
        if len(key) != 32:
            raise ValueError(f"key {kid!r} must decode to 32 bytes (AES-256)")
        if len(set(key)) < 8:
            raise ValueError(f"key {kid!r} is trivial")
        keys.append((kid, key))
    if not keys:
        raise ValueError("no key given")
    return keys
