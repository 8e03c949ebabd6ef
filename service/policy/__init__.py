"""The policy port (who may do what, what each caller sees) and its in-process Rego adapter."""

from service.policy.port import Decision, Entitlements, PolicyEngine, PolicyStatus

__all__ = ["Decision", "Entitlements", "PolicyEngine", "PolicyStatus"]
