"""The policy port: decisions and entitlements come from policy files (data), not from code.

Contract for every adapter:

- ``warm_up`` compiles the policies once; a policy that does not compile then is fatal (fail closed:
  no policy, no data). Later, ``reload`` (and any automatic reload on a file change) compiles the
  new files and, if they fail, keeps the previous policy in force and reports the error in ``status``.
- ``decide`` answers whether ``principal`` may perform ``action`` on ``resource`` given the roles the
  route requires; an undefined or unreadable answer is a denial.
- ``entitlements`` says which document classifications the principal may see and which ACL groups
  are walled off from it (ethical walls); an unreadable answer admits nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

PrincipalFacts = Mapping[str, Any]  # {"tenant", "subject", "groups": [...], "roles": [...]}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) or "the access policy does not allow this"


@dataclass(frozen=True)
class Entitlements:
    classifications: tuple[str, ...] = ()
    excluded_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyStatus:
    """What is in force: its revision (a hash of the sources), when it was loaded, and the last failure."""

    revision: str | None
    loaded_at: str | None
    files: list[str] = field(default_factory=list)
    last_error: str | None = None
    last_error_at: str | None = None


class PolicyEngine(Protocol):
    def warm_up(self) -> None:
        """Compile the policies. :raises PolicyError: they do not compile (the service must not start)."""

    def decide(
        self,
        action: str,
        principal: PrincipalFacts,
        required_roles: Sequence[str],
        resource: Mapping[str, Any] | None = None,
    ) -> Decision:
        """May ``principal`` perform ``action`` (on ``resource``)?"""

    def entitlements(self, principal: PrincipalFacts) -> Entitlements:
        """Classifications the principal may see and ACL groups walled off from it."""

    def reload(self) -> PolicyStatus:
        """Recompile now; on failure keep the previous policy and report the error in the status."""

    def status(self) -> PolicyStatus:
        """The policy in force and the last reload failure, if any."""
