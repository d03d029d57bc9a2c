"""Outgoing notifications: webhook, e-mail (SMTP) and LINE plugins behind one interface."""

from citydata.incidents.notify.base import NOTIFIERS, Message, Notifier, NotifyError, load_notifiers

__all__ = ["NOTIFIERS", "Message", "Notifier", "NotifyError", "load_notifiers"]
