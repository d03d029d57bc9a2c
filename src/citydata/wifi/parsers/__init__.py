"""WiFi record parsers (plugins): see ``base.py``; one module per format."""

from citydata.wifi.parsers.base import PARSERS, Context, Parser, formats, parse_line, register, split_syslog

__all__ = ["PARSERS", "Context", "Parser", "formats", "parse_line", "register", "split_syslog"]
