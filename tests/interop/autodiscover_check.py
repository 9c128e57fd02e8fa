"""Checks `ews-presence simulate`'s SOAP Autodiscover with an independent client,
exchangelib's GetUserSettings service (the one its Autodiscovery uses), over HTTPS
with NTLM: every mailbox's ExternalEwsUrl and GroupingInformation must name its
backend as the simulator's ground truth spreads them (user N on backend (N-1) mod 4),
an address at legacy.DOMAIN must come back as a redirect, and an unknown user as
InvalidUser. Exits non-zero on the first mismatch.

Usage: autodiscover_check.py BASE_URL PASSWORD_FILE
"""

import sys

from exchangelib import NTLM, Configuration, Credentials
from exchangelib.autodiscover.protocol import AutodiscoverProtocol
from exchangelib.errors import ErrorNonExistentMailbox

BASE, PASSWORD_FILE = sys.argv[1], sys.argv[2]
BACKENDS = 4
checks = 0


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


password = open(PASSWORD_FILE).read().strip()
protocol = AutodiscoverProtocol(
    config=Configuration(
        service_endpoint=f"{BASE}/autodiscover/autodiscover.svc",
        credentials=Credentials("svc@example.test", password),
        auth_type=NTLM,
    )
)
SETTINGS = ["external_ews_url", "internal_ews_url", "grouping_information", "ews_supported_schemas"]

for n in (1, 2, 7, 12):
    response = protocol.get_user_settings(user=f"user{n}@example.test", settings=SETTINGS)
    backend = (n - 1) % BACKENDS + 1
    # exchangelib turns error codes into exceptions and leaves error_code unset on success.
    check(response.error_code in (None, "NoError"), f"user{n}: answered without an error")
    check(
        response.ews_url == f"{BASE}/mbx{backend:02d}/EWS/Exchange.asmx",
        f"user{n}: ExternalEwsUrl names backend {backend} ({response.ews_url})",
    )
    check(
        response.user_settings.get("grouping_information") == f"EXAMPLE-DAG{backend}",
        f"user{n}: GroupingInformation EXAMPLE-DAG{backend}",
    )
    check(response.version is not None, f"user{n}: EwsSupportedSchemas gives a version ({response.version})")

redirect = protocol.get_user_settings(user="user3@legacy.example.test", settings=SETTINGS)
check(
    redirect.redirect_address == "user3@example.test",
    f"a legacy address redirects ({redirect.error_code} -> {redirect.redirect_address})",
)

try:
    unknown = protocol.get_user_settings(user="nobody@example.test", settings=SETTINGS)
    check(unknown.error_code == "InvalidUser", f"an unknown user is InvalidUser ({unknown.error_code})")
except ErrorNonExistentMailbox as e:
    check("nobody@example.test" in str(e), f"an unknown user is refused as InvalidUser ({e})")

print(f"{checks} passed, 0 failed")
