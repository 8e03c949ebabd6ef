"""Identity and access: who is calling (OIDC JWTs, API keys, the dev key) and what it may do (Rego policies).

``Principal`` is what routes receive (``service.deps.PrincipalDep``); ``require(role, action=…)``
is what they declare; ``AccessControl`` (built once in ``build_state``) does both.
"""

from service.auth.dependencies import current_principal, require
from service.auth.principal import ROLES, Principal, Role

__all__ = ["ROLES", "Principal", "Role", "current_principal", "require"]
