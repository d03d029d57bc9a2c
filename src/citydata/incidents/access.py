"""Incident-scoped access to a traveller: a police-role caller may see a traveller's identity and track only
while an open incident assigned to its agency concerns that traveller (an alert about them is attached)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import and_, select

from citydata.incidents.model import agency_scope
from citydata.incidents.schema import alerts, incident_alerts, incident_assignments, incidents

if TYPE_CHECKING:
    from citydata.auth import Principal
    from citydata.store import Store

CLOSED_STATES = ("closed",)


class IncidentBackedAccess:
    """Implements ``citydata.tracking.privacy.IncidentAccess`` over the IOC's incident tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def traveller_visible_to(self, principal: Principal, traveller_id: str) -> bool:
        agency = agency_scope(principal)
        if agency is None:
            return False        # only agency roles are scoped through incidents; others have their own rules
        stmt = (select(incidents.c.id)
                .join(incident_assignments, and_(incident_assignments.c.incident_id == incidents.c.id,
                                                 incident_assignments.c.agency_id == agency))
                .join(incident_alerts, incident_alerts.c.incident_id == incidents.c.id)
                .join(alerts, alerts.c.id == incident_alerts.c.alert_id)
                .where(alerts.c.subject == traveller_id, alerts.c.kind.like("tracking.%"),
                       incidents.c.state.not_in(CLOSED_STATES))
                .limit(1))
        return await self.store.scalar(stmt) is not None
