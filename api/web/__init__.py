"""The HTTP application: app wiring, bearer-token auth, problem details, body limits, health."""
