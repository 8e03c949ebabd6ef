"""Who is calling. The embedded default runs in dev mode: one local principal with every role.

The identity work (OIDC, API keys, Rego policies) replaces :func:`current_principal`; routes
already receive a :class:`Principal` and build their index filter from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ingest.index.port import AccessFilter


@dataclass(frozen=True)
class Principal:
    tenant: str
    subject: str
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    auth_method: str = "dev"

    def access(self, collections: list[str] | None = None) -> AccessFilter:
        """The index filter for this principal: its tenant, and its ACL unless it is an admin."""
        unrestricted = "admin" in self.roles
        return AccessFilter(
            tenant=self.tenant,
            collections=tuple(collections) if collections else None,
            principal_user=None if unrestricted else self.subject,
            principal_groups=None if unrestricted else self.groups,
        )


def current_principal(request: Request) -> Principal:
    settings = request.app.state.enclave.settings
    return Principal(tenant=settings.default_tenant, subject="dev", roles=("admin", "reader", "contributor", "auditor"))
