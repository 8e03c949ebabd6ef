# Who may do what, which classifications a caller sees, and ethical walls.
#
# Enclave compiles every *.rego file in this directory once and evaluates two entrypoints per
# request: `decision` (may this principal perform input.action on input.resource?) and
# `entitlements` (what its index filter admits). The data is access.json (data.access).
# Edit either file and Enclave reloads it (within ENCLAVE_AUTH__POLICY_CHECK_S, on SIGHUP, or on
# POST /v1/policy/reload); a file that does not compile leaves the previous policy in force.
#
# input: {"action", "required_roles": [...], "principal": {"tenant", "subject", "groups", "roles"},
#         "resource": {"collection", "classification", "acl": {"groups", "users"}, "metadata"}}
package enclave.access

import rego.v1

# (messages are built with concat: rego-cpp's sprintf does not escape strings)

principal := input.principal

is_admin if "admin" in principal.roles

effective_roles contains role if some role in principal.roles

effective_roles contains implied if {
	some role in principal.roles
	some implied in object.get(data.access.implies, role, [])
}

# --- entitlements: what the caller's index filter admits ---------------------------------------

classifications contains c if {
	some role in effective_roles
	some c in object.get(data.access.role_classifications, role, [])
}

classifications contains c if {
	some group in principal.groups
	some c in object.get(data.access.group_classifications, group, [])
}

excluded_groups contains other if {
	some wall in data.access.walls
	some mine in principal.groups
	mine in wall.groups
	some other in wall.groups
	other != mine
}

excluded_groups contains screened if {
	some mine in principal.groups
	startswith(mine, "screened:")
	screened := trim_prefix(mine, "screened:")
}

entitlements := {"classifications": classifications, "excluded_groups": excluded_groups}

# --- decisions --------------------------------------------------------------------------------

role_permits if {
	some role in input.required_roles
	role in effective_roles
}

reasons contains msg if {
	not role_permits
	msg := concat("", ["this needs the ", concat(" or ", input.required_roles), " role; ask an administrator to grant it"])
}

reasons contains msg if some msg in deny

default allow := false

allow if {
	role_permits
	count(deny) == 0
}

decision := {"allow": allow, "reasons": reasons}

resource := object.get(input, "resource", {})

acl_groups := object.get(object.get(resource, "acl", {}), "groups", [])

acl_users := object.get(object.get(resource, "acl", {}), "users", [])

writes if input.action in {"ingest", "delete"}

# Site-wide operations (a backup holds every tenant) are for the admins of the operator tenants only.
site_actions := {"backup"}

deny contains msg if {
	input.action in site_actions
	not principal.tenant in object.get(data.access, "site_operator_tenants", [])
	msg := concat("", ["'", input.action, "' is a site operation: only admins of a tenant in site_operator_tenants (policies/access.json) may do it"])
}

deny contains msg if {
	input.action == "ingest"
	not resource.classification in data.access.classifications
	msg := concat("", ["classification '", resource.classification, "' is not one of ", concat(", ", data.access.classifications)])
}

deny contains msg if {
	input.action == "ingest"
	resource.classification in data.access.classifications
	not resource.classification in classifications
	msg := concat("", ["you may not ingest '", resource.classification, "' documents: your roles and groups cannot read them"])
}

# A non-admin must be able to read back what it ingests (no blind writes into other teams' documents).
deny contains msg if {
	input.action == "ingest"
	not is_admin
	count(acl_groups) + count(acl_users) > 0
	count({g | some g in acl_groups; g in principal.groups}) == 0
	not principal.subject in acl_users
	msg := "the acl must name one of your groups or you; ask an administrator to ingest for other groups"
}

deny contains msg if {
	writes
	some group in acl_groups
	group in excluded_groups
	msg := concat("", ["ethical wall: you are screened from documents of '", group, "'"])
}

deny contains msg if {
	writes
	matter := object.get(object.get(resource, "metadata", {}), "matter", null)
	is_string(matter)
	concat(":", ["matter", matter]) in excluded_groups
	msg := concat("", ["ethical wall: you are screened from matter '", matter, "'"])
}

deny contains msg if {
	writes
	not is_admin
	writers := data.access.collection_writers[resource.collection]
	count({g | some g in writers; g in principal.groups}) == 0
	msg := concat("", ["collection '", resource.collection, "' accepts writes only from the groups ", concat(", ", writers)])
}
