"""The security spine: roles and permissions, principals, passwords, API tokens, sessions, users, audit and
failure throttling. Framework-free; the HTTP layer builds on these services."""

from citydata.auth.audit import AuditLog
from citydata.auth.passwords import check_password_policy, hash_password, needs_rehash, verify_password
from citydata.auth.principal import ANONYMOUS, Principal
from citydata.auth.roles import (
    PERMISSION_TABLE,
    PERMISSIONS,
    Permission,
    Role,
    allowed,
    permission_table_markdown,
    permissions_of,
    roles_for,
)
from citydata.auth.sessions import SessionService
from citydata.auth.throttle import FailureThrottle
from citydata.auth.tokens import TokenService, parse_token
from citydata.auth.users import UserService

__all__ = [
    "ANONYMOUS",
    "PERMISSIONS",
    "PERMISSION_TABLE",
    "AuditLog",
    "FailureThrottle",
    "Permission",
    "Principal",
    "Role",
    "SessionService",
    "TokenService",
    "UserService",
    "allowed",
    "check_password_policy",
    "hash_password",
    "needs_rehash",
    "parse_token",
    "permission_table_markdown",
    "permissions_of",
    "roles_for",
    "verify_password",
]
