"""Microsoft's own Graph SDK for Python (msgraph-sdk, with azure-identity signing in)
against `ews-presence simulate --graph` over HTTPS: it gets a token with client
credentials, creates and lists events, reads a schedule and automatic-reply settings,
and creates a subscription, which the simulator validates against a small receiver
this script runs (and then notifies). Nothing of the SDK is changed: the request
adapter is pointed at the simulator as any sovereign-cloud deployment points it.

Usage: msgraph_check.py BASE_URL TENANT CLIENT_ID SECRET_FILE CA_FILE
"""

import asyncio
import datetime
import http.server
import json
import sys
import threading
import urllib.parse

import httpx
from azure.identity import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.event import Event
from msgraph.generated.models.free_busy_status import FreeBusyStatus
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.users.item.calendar.get_schedule.get_schedule_post_request_body import (
    GetSchedulePostRequestBody,
)
from msgraph_core import GraphClientFactory

base, tenant, client_id, secret_file, ca_file = sys.argv[1:6]
host = urllib.parse.urlparse(base).netloc
user = "user3@example.test"
received = []


class Receiver(http.server.BaseHTTPRequestHandler):
    """Answers Graph's validation request and keeps the notifications."""

    def do_POST(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if "validationToken" in query:
            token = query["validationToken"][0].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(token)))
            self.end_headers()
            self.wfile.write(token)
            return
        received.append(json.loads(body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def at(t):
    return DateTimeTimeZone(date_time=t.strftime("%Y-%m-%dT%H:%M:%S"), time_zone="UTC")


async def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver_url = f"http://127.0.0.1:{server.server_address[1]}/notifications"

    with open(secret_file) as f:
        secret = f.readline().strip()
    credential = ClientSecretCredential(
        tenant,
        client_id,
        secret,
        authority=host,
        disable_instance_discovery=True,
        connection_verify=ca_file,
    )
    scopes = ["https://graph.microsoft.com/.default"]
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=scopes, allowed_hosts=[urllib.parse.urlparse(base).hostname]
    )
    http_client = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ca_file)
    )
    adapter = GraphRequestAdapter(auth, client=http_client)
    adapter.base_url = f"{base}/v1.0"
    graph = GraphServiceClient(request_adapter=adapter)

    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    created = await graph.users.by_user_id(user).events.post(
        Event(
            subject="Interop review",
            start=at(now - datetime.timedelta(minutes=5)),
            end=at(now + datetime.timedelta(hours=1)),
            show_as=FreeBusyStatus.Busy,
        )
    )
    assert created.id, "the created event has an id"
    assert created.show_as == FreeBusyStatus.Busy, created.show_as
    print(f"created event {created.id[:16]}…")

    listed = await graph.users.by_user_id(user).events.get()
    ids = [e.id for e in listed.value]
    pages = 1
    while created.id not in ids and listed.odata_next_link:
        listed = await graph.users.by_user_id(user).events.with_url(
            base + listed.odata_next_link if listed.odata_next_link.startswith("/") else listed.odata_next_link
        ).get()
        ids += [e.id for e in listed.value]
        pages += 1
    assert created.id in ids, "the created event is listed"
    print(f"listed {len(ids)} events over {pages} page(s)")

    schedule = await graph.users.by_user_id(user).calendar.get_schedule.post(
        GetSchedulePostRequestBody(
            schedules=[user, "user4@example.test"],
            start_time=at(now - datetime.timedelta(hours=1)),
            end_time=at(now + datetime.timedelta(hours=8)),
            availability_view_interval=30,
        )
    )
    info = {s.schedule_id: s for s in schedule.value}
    mine = info[user]
    busy = [i for i in mine.schedule_items if i.status == FreeBusyStatus.Busy]
    assert busy, "the schedule shows the meeting as busy"
    assert mine.availability_view and "2" in mine.availability_view, mine.availability_view
    print(f"schedule of {len(info)} mailboxes; {user}: {mine.availability_view}")

    settings = await graph.users.by_user_id(user).mailbox_settings.get()
    replies = settings.automatic_replies_setting
    assert replies is not None and replies.status is not None, "automatic replies are read"
    print(f"automatic replies: {replies.status}")

    expires = now + datetime.timedelta(hours=2)
    subscription = await graph.subscriptions.post(
        Subscription(
            change_type="created,updated,deleted",
            notification_url=receiver_url,
            lifecycle_notification_url=receiver_url,
            resource=f"users/{user}/events",
            expiration_date_time=expires,
            client_state="interop-client-state",
        )
    )
    assert subscription.id, "the subscription was created"
    print(f"subscription {subscription.id} until {subscription.expiration_date_time}")

    await graph.users.by_user_id(user).events.by_event_id(created.id).delete()
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0.1)
    assert received, "the deletion was notified"
    note = received[0]["value"][0]
    assert note["clientState"] == "interop-client-state", note
    assert note["subscriptionId"] == subscription.id, note
    assert note["changeType"] == "deleted", note
    print(f"notified: {note['changeType']} {note['resource'][:40]}…")

    await graph.subscriptions.by_subscription_id(subscription.id).delete()
    server.shutdown()
    print("msgraph-sdk interop: ok")


asyncio.run(main())
