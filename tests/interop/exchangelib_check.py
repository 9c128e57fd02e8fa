"""Checks `ews-presence simulate` with an independent EWS client, exchangelib.

It talks to the simulator as it would to Exchange: impersonates a mailbox through a
service account with Basic or NTLM authentication (NTLM through requests_ntlm and
pyspnego, which send the Extended Protection channel binding over HTTPS), subscribes to the calendar with streaming,
creates and deletes an item with CreateItem and DeleteItem, receives the events over
GetStreamingEvents, reads free/busy with get_free_busy_info, and reads and sets the
automatic-reply settings. Every answer is compared with the simulator's ground truth
from its control API. Exits non-zero on the first mismatch.

Usage: exchangelib_check.py BASE_URL PASSWORD_FILE CA_FILE [basic|ntlm]
"""

import datetime
import json
import sys
import urllib.request

from exchangelib import (
    BASIC,
    IMPERSONATION,
    NTLM,
    Account,
    Build,
    CalendarItem,
    Configuration,
    Credentials,
    EWSDateTime,
    EWSTimeZone,
    OofSettings,
    Version,
)
from exchangelib.properties import CreatedEvent, DeletedEvent, ModifiedEvent

BASE, PASSWORD_FILE = sys.argv[1], sys.argv[2]
CA_FILE = sys.argv[3] if len(sys.argv) > 3 else None
AUTH = sys.argv[4] if len(sys.argv) > 4 else "basic"
MAILBOX = "user7@example.test"
UTC = EWSTimeZone("UTC")
checks = 0


def control(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{BASE}/sim{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    context = None
    if CA_FILE:
        import ssl

        context = ssl.create_default_context(cafile=CA_FILE)
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        text = response.read().decode()
        return json.loads(text) if text.strip() else None


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def truth_at(when):
    return control("GET", f"/mailboxes/{MAILBOX}/truth?at={when.strftime('%Y-%m-%dT%H:%M:%SZ')}")


def stream_events(folder, subscription_id):
    """Every event delivered on one GetStreamingEvents connection, until Closed."""
    events = []
    for notification in folder.get_streaming_events(subscription_id, connection_timeout=1):
        events.extend(notification.events)
    return events


password = open(PASSWORD_FILE).read().strip()
config = Configuration(
    service_endpoint=f"{BASE}/EWS/Exchange.asmx",
    credentials=Credentials("svc@example.test", password),
    auth_type={"basic": BASIC, "ntlm": NTLM}[AUTH],
    version=Version(build=Build(15, 2, 1544, 4), api_version="Exchange2016"),
)
account = Account(MAILBOX, config=config, autodiscover=False, access_type=IMPERSONATION, default_timezone=UTC)
control("PUT", f"/mailboxes/{MAILBOX}/oof", {"state": "Disabled"})
PRECEDENCE = ["free", "working-elsewhere", "tentative", "busy", "oof"]

calendar = account.calendar
check(calendar.name == "Calendar", "GetFolder returns the distinguished calendar folder")

subscription_id = calendar.subscribe_to_streaming(
    event_types=("CreatedEvent", "DeletedEvent", "ModifiedEvent", "FreeBusyChangedEvent")
)
check(bool(subscription_id), "Subscribe (streaming) returns a subscription id")

# An hour-long meeting starting on the next full hour.
now = datetime.datetime.now(datetime.timezone.utc)
start = EWSDateTime.from_datetime(now.replace(minute=0, second=0, microsecond=0) + datetime.timedelta(hours=1))
start = start.astimezone(UTC)
end = start + datetime.timedelta(hours=1)
middle = start + datetime.timedelta(minutes=30)
before = truth_at(middle)

item = CalendarItem(
    account=account,
    folder=calendar,
    subject="exchangelib interop",
    start=start,
    end=end,
    legacy_free_busy_status="Busy",
)
item.save()
check(bool(item.id), "CreateItem returns an item id")
created_as = item.legacy_free_busy_status
after = truth_at(middle)
expected = max(before["calendar"], "busy", key=PRECEDENCE.index)
check(after["calendar"] == expected, f"ground truth shows the new item ({before['calendar']} -> {after['calendar']})")
truth_items = control("GET", f"/mailboxes/{MAILBOX}/items")
check(any(i["item_id"] == item.id for i in truth_items), "the simulator's ground truth holds the created item")

events = stream_events(calendar, subscription_id)
created = [e for e in events if isinstance(e, CreatedEvent) and e.item_id and e.item_id.id == item.id]
check(len(created) == 1, f"GetStreamingEvents delivered CreatedEvent for the item ({len(events)} events)")

# Free/busy over the meeting's hour, as a presence gateway would ask.
views = list(
    account.protocol.get_free_busy_info(
        accounts=[(account, "Organizer", False)],
        start=start - datetime.timedelta(hours=1),
        end=end + datetime.timedelta(hours=1),
        requested_view="FreeBusy",
    )
)
check(len(views) == 1, "get_free_busy_info answers one view per mailbox")
busy = [(e.start, e.end, e.busy_type) for e in (views[0].calendar_events or [])]
check((start, end, created_as) in busy, f"free/busy shows the item as {created_as}: {busy}")
window = control("GET", f"/mailboxes/{MAILBOX}/items")
expected_events = sorted(
    (i["start"], i["end"], i["busy_type"])
    for i in window
    if i["start"] < (end + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    and i["end"] > (start - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
)
got_events = sorted((s.strftime("%Y-%m-%dT%H:%M:%SZ"), e.strftime("%Y-%m-%dT%H:%M:%SZ"), b) for s, e, b in busy)
check(got_events == expected_events, "free/busy equals the ground truth's items in the window")

item.legacy_free_busy_status = "Tentative"
item.save(update_fields=["legacy_free_busy_status"])
check(truth_at(middle)["calendar"] in ("tentative", "busy", "oof"), "UpdateItem changed the item")
events = stream_events(calendar, subscription_id)
kinds = {type(e).__name__ for e in events}
check({"ModifiedEvent", "FreeBusyChangedEvent"} <= kinds, f"UpdateItem raised ModifiedEvent + FreeBusyChangedEvent ({kinds})")

item_id = item.id  # exchangelib forgets the id once the item is deleted
item.delete()
truth_items = control("GET", f"/mailboxes/{MAILBOX}/items")
check(not any(i["item_id"] == item_id for i in truth_items), "DeleteItem removed the item from the ground truth")
check(truth_at(middle) == before, "availability is back to what it was before the meeting")
events = stream_events(calendar, subscription_id)
deleted = [e for e in events if isinstance(e, DeletedEvent) and e.item_id and e.item_id.id == item_id]
check(len(deleted) == 1, "GetStreamingEvents delivered DeletedEvent for the item")
folder_modified = [e for e in events if isinstance(e, ModifiedEvent) and e.folder_id]
check(len(folder_modified) >= 1, "the calendar folder's ModifiedEvent follows")

# Automatic replies.
control("PUT", f"/mailboxes/{MAILBOX}/oof", {"state": "Disabled"})
check(account.oof_settings.state == OofSettings.DISABLED, "GetUserOofSettings reads Disabled")
oof_start = start
oof_end = start + datetime.timedelta(days=2)
account.oof_settings = OofSettings(
    state=OofSettings.SCHEDULED,
    start=oof_start,
    end=oof_end,
    external_audience="All",
    internal_reply="Away",
    external_reply="Away",
)
settings = account.oof_settings
check(settings.state == OofSettings.SCHEDULED, "SetUserOofSettings stored Scheduled")
check((settings.start, settings.end) == (oof_start, oof_end), "the Duration round-trips")
inside = truth_at(middle)
check(inside["out_of_office"] and inside["availability"] == "away", "ground truth: away inside the schedule")
check(not truth_at(start - datetime.timedelta(hours=1))["out_of_office"], "ground truth: not away before it")
control("PUT", f"/mailboxes/{MAILBOX}/oof", {"state": "Enabled"})
check(account.oof_settings.state == OofSettings.ENABLED, "GetUserOofSettings reads Enabled set by the control API")

live_before = control("GET", "/stats")["subscriptions_live"]
calendar.unsubscribe(subscription_id)
check(control("GET", "/stats")["subscriptions_live"] == live_before - 1, "Unsubscribe removed the subscription")
if AUTH == "ntlm":
    stats = control("GET", "/stats")
    rejected = stats.get("rejected", {})
    check(stats["logins"].get("ntlm", 0) >= 1, "the simulator verified exchangelib's NTLM logins")
    check(
        not rejected.get("missing_binding") and not rejected.get("bad_binding") and not rejected.get("unauthorized"),
        f"with Extended Protection required, exchangelib's channel binding was accepted ({rejected})",
    )
print(f"{checks} passed, 0 failed")
