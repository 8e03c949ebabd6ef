"""The OpenAI-compatible chat facade: portals that speak the OpenAI chat API get cited, permission-filtered answers."""
