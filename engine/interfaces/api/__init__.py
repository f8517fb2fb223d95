"""The JSON API (``/api/v1``): the service layer over HTTP for case-management systems and
portals, with bearer tokens, idempotent writes and problem details; described at /openapi.json."""
