"""Every route demands the permission API.md gives its section (R28): configuration is `admin`;
writes are `write`, their deletions `delete`; reads are `read`; health, docs and the pixel none.

The table is API.md's, route by route, plus the routes this service adds (suppressions, lookup
by a unique field); a route added without a line here fails, so its permission is a decision.
"""

from __future__ import annotations

import re

from services.http_api import create_app
from services.openapi_docs import api_routes, needed_permissions
from services.settings import Settings

EXPECTED: dict[tuple[str, str], str | None] = {
    # Configuration (admin)
    ("POST", "/v1/databases"): "admin",
    ("GET", "/v1/databases/{}"): "admin",
    ("POST", "/v1/databases/{}/fields"): "admin",
    ("DELETE", "/v1/databases/{}/fields/{}"): "admin",
    ("POST", "/v1/resources"): "admin",
    ("GET", "/v1/resources/{}"): "admin",
    ("PATCH", "/v1/resources/{}"): "admin",
    # Writes (write; delete for deletion)
    ("POST", "/v1/databases/{}/profiles"): "write",
    ("POST", "/v1/databases/{}/profiles:batch"): "write",
    ("POST", "/v1/databases/{}/imports"): "write",
    ("GET", "/v1/databases/{}/imports/{}"): "write",
    ("PATCH", "/v1/profiles/{}"): "write",
    ("PUT", "/v1/profiles/{}/status"): "write",
    ("DELETE", "/v1/profiles/{}"): "delete",
    ("POST", "/v1/profiles/{}/subscriptions"): "write",
    ("PATCH", "/v1/profiles/{}/subscriptions/{}"): "write",
    ("DELETE", "/v1/profiles/{}/subscriptions/{}"): "delete",
    ("POST", "/v1/events"): "write",
    ("GET", "/px/{}"): None,  # an email client loads it: it carries no key
    # Reads (read)
    ("GET", "/v1/profiles/{}"): "read",
    ("GET", "/v1/profiles/by-md5/{}"): "read",
    ("GET", "/v1/profiles/by-xxh/{}"): "read",
    ("GET", "/v1/databases/{}/profiles/by-email/{}"): "read",
    ("GET", "/v1/databases/{}/profiles/by-phone/{}"): "read",
    ("GET", "/v1/profiles/{}/subscriptions"): "read",
    ("GET", "/v1/profiles/{}/history"): "read",
    **{
        ("GET", f"/v1/profiles/{{}}/{what}"): "read"
        for what in ("segments", "scenarios", "triggers", "promo-codes", "orders", "relations")
    },
    ("GET", "/v1/profiles/{}/forms"): "read",
    ("GET", "/v1/profiles/{}/export"): "read",
    ("GET", "/v1/resources/{}/recipient"): "read",
    ("GET", "/v1/segments/{}/members"): "read",
    # this service's own
    ("GET", "/v1/databases/{}/profiles/by-field/{}/{}"): "read",
    ("GET", "/v1/suppressions/{}"): "read",
    ("DELETE", "/v1/suppressions/{}"): "admin",  # R8: only an admin lifts a suppression
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/metrics"): None,
    ("GET", "/asyncapi.json"): None,
}


def test_every_route_demands_the_permission_of_its_section_R28() -> None:
    app = create_app(Settings())
    actual: dict[tuple[str, str], str | None] = {}
    for route in api_routes(app.routes):
        path = re.sub(r"\{[^}]*\}", "{}", route.path)
        permissions = needed_permissions(route.dependant)
        assert len(permissions) <= 1, (route.path, permissions)
        for method in route.methods:
            actual[(method, path)] = permissions[0] if permissions else None
    assert actual == EXPECTED
