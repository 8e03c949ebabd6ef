"""Access control for the service: authenticate, attach the policy's entitlements, authorise each route."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from ingest.config import Settings
from ingest.policy_data import policies_dir
from service.auth.authenticator import Authenticator, build_authenticator
from service.auth.errors import PermissionDenied
from service.auth.principal import Principal
from service.policy.port import Decision, PolicyEngine
from service.policy.regopy_engine import RegoPolicyEngine


@dataclass
class AccessControl:
    authenticator: Authenticator
    policy: PolicyEngine

    def principal(self, authorization: str | None) -> Principal:
        """The caller, with the classifications it may see and the groups walled off from it.

        :raises Unauthenticated: no valid credential.
        """
        principal = self.authenticator.authenticate(authorization)
        granted = self.policy.entitlements(principal.facts())
        return dataclasses.replace(
            principal, classifications=granted.classifications, excluded_groups=granted.excluded_groups
        )

    def decide(
        self, principal: Principal, action: str, roles: Sequence[str], resource: Mapping[str, Any] | None = None
    ) -> Decision:
        return self.policy.decide(action, principal.facts(), roles, resource)

    def authorize(
        self, principal: Principal, action: str, roles: Sequence[str], resource: Mapping[str, Any] | None = None
    ) -> None:
        """:raises PermissionDenied: with the policy's reasons (they name what to ask for)."""
        decision = self.decide(principal, action, roles, resource)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)


def build_access(settings: Settings, engine: Engine) -> AccessControl:
    """Compile the policies and set up the identity sources; fails closed.

    :raises PolicyError: the policies do not compile.
    :raises AuthNotConfigured: production mode without an identity provider or API key.
    """
    policy = RegoPolicyEngine(policies_dir(settings), check_interval_s=settings.auth.policy_check_s)
    policy.warm_up()
    return AccessControl(build_authenticator(settings, engine), policy)
