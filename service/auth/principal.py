"""Who is calling: the principal an authenticated request carries, and the roles it can hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ingest.index.port import AccessFilter

Role = Literal["reader", "contributor", "auditor", "admin"]
ROLES: tuple[Role, ...] = ("reader", "contributor", "auditor", "admin")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: one tenant, a subject, its groups and roles.

    ``classifications`` and ``excluded_groups`` come from the access policy when the request is
    authenticated (which classifications its roles and groups may see; ethical walls). ``None``
    classifications means unrestricted (a local operator's principal, never an HTTP caller's).
    """

    tenant: str
    subject: str
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    auth_method: str = "dev"
    classifications: tuple[str, ...] | None = None
    excluded_groups: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def access(self, collections: list[str] | None = None) -> AccessFilter:
        """The index filter: its tenant, classifications and walls, and its ACL unless it is an admin."""
        unrestricted = self.is_admin
        return AccessFilter(
            tenant=self.tenant,
            collections=tuple(collections) if collections else None,
            classifications=self.classifications,
            principal_user=None if unrestricted else self.subject,
            principal_groups=None if unrestricted else self.groups,
            excluded_groups=self.excluded_groups or None,
        )

    def facts(self) -> dict[str, Any]:
        """What the access policy sees of this principal."""
        return {"tenant": self.tenant, "subject": self.subject, "groups": list(self.groups), "roles": list(self.roles)}
