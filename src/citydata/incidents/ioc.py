"""The IOC capability's composition: alerts, agencies, incidents, attachments, SLA timers, CAP warnings,
notifications and the live hub, built from the platform and started/stopped in order.

Wiring in ``Platform.start`` (after MQTT, before ``create_app``)::

    from citydata.incidents.ioc import IOC
    self.ioc = IOC(self)
    await self.ioc.start()
    self._started.append("ioc")

and in ``Platform._stop_one``: ``elif name == "ioc" and self.ioc is not None: await self.ioc.stop()``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from citydata.alerts.events import register_ioc_events
from citydata.alerts.live import LiveHub
from citydata.alerts.service import AlertService
from citydata.errors import Unavailable
from citydata.incidents.agencies import AgencyService
from citydata.incidents.attachments import Attachments
from citydata.incidents.deliveries import Deliveries
from citydata.incidents.notify import Notifier, load_notifiers
from citydata.incidents.sla import SlaMonitor
from citydata.incidents.warnings import CapService
from citydata.incidents.workflow import IncidentService

if TYPE_CHECKING:
    from citydata.app import Platform

log = logging.getLogger(__name__)


class IOC:
    """Everything of the operations center that runs in one node."""

    alerts: AlertService
    agencies: AgencyService
    deliveries: Deliveries
    incidents: IncidentService
    attachments: Attachments
    cap: CapService
    sla: SlaMonitor
    live: LiveHub
    notifiers: dict[str, Notifier]

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.http: httpx.AsyncClient | None = None
        self._started: list[str] = []

    async def _mqtt_publish(self, topic: str, payload: bytes) -> bool:
        bridge = self.platform.bridge
        return bool(await bridge.publish(topic, payload, qos=1)) if bridge is not None else False

    async def start(self, *, consumers: bool = True) -> None:
        """Build and start everything; ``consumers=False`` (a cluster node that is not the leader) leaves the
        alert and CAP consumers, the notification sender and the SLA timer off: ``start_consumers`` starts
        them when this node becomes the leader (they must run once cluster-wide)."""
        p, s = self.platform, self.platform.settings
        register_ioc_events()
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=s.ioc_delivery_timeout_s)
        self.notifiers = load_notifiers(s, self.http)
        self.agencies = AgencyService(p.store, p.clock)
        created = await self.agencies.ensure_defaults()
        if created:
            log.info("created %d default agencies", created)
        self.deliveries = Deliveries(p.store, p.clock, s, self.notifiers, p.dead_letters)
        self.alerts = AlertService(p.store, p.bus, p.clock, self._mqtt_publish)
        self.incidents = IncidentService(p.store, p.bus, p.clock, self.alerts, self.deliveries, s.base_url)
        self.attachments = Attachments(p.store, p.clock, self.incidents, s.data_dir / "attachments",
                                       s.ioc_attachment_max_bytes)
        self.cap = CapService(p.store, p.bus, p.clock, s, p.geography)
        escalation = [a.strip() for a in s.ioc_escalation_agencies.split(",") if a.strip()]
        self.sla = SlaMonitor(p.store, p.clock, self.incidents, s.ioc_sla_check_s, escalation)
        self.live = LiveHub(p.bus, buffer=s.ioc_stream_buffer, client_queue=s.ioc_stream_client_queue)

        await self.live.start()
        self._started.append("live")
        if consumers:
            await self.start_consumers()

    async def start_consumers(self) -> None:
        await self.alerts.start()
        self._started.append("alerts")
        await self.cap.start()
        self._started.append("cap")
        self.deliveries.start()
        self._started.append("deliveries")
        self.sla.start()
        self._started.append("sla")

    async def stop_consumers(self) -> None:
        for name in ("sla", "deliveries", "cap", "alerts"):
            if name in self._started:
                self._started.remove(name)
                try:
                    await getattr(self, name).stop()
                except Exception:
                    log.exception("stopping %s failed", name)

    async def stop(self) -> None:
        for name in reversed(self._started):
            try:
                await getattr(self, name).stop()
            except Exception:
                log.exception("stopping %s failed", name)
        self._started.clear()
        if self.http is not None:
            await self.http.aclose()
            self.http = None

    def describe(self) -> dict[str, Any]:
        return {"stream_clients": self.live.clients, "stream_cut_off": self.live.cut_off,
                "notifications_sent": self.deliveries.sent, "notifications_failed": self.deliveries.failed,
                "notifications_dead": self.deliveries.dead, "sla_breaches": self.sla.breaches}


def ioc_of(platform: Platform) -> IOC:
    """The platform's IOC (503 when the capability is not running on this node)."""
    ioc = getattr(platform, "ioc", None)
    if not isinstance(ioc, IOC):
        raise Unavailable("the IOC (alerts and incidents) is not running on this node", code="ioc_unavailable")
    return ioc
