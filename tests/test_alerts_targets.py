"""Webhook targets under the outbound policy: what may be saved (model, admin,
ALERT_WEBHOOK_URLS), which addresses a delivery may reach (public ones, and
ALERT_ALLOWED_NETWORKS), what ``last_error`` and the log may say about a
failure, and that neither shows a secret from the URL.

Every listener is on 127.0.0.1 and counts the TCP connections it accepts: a
refused target must not get one."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from alerts import checks
from alerts.channels import environment_channels
from alerts.delivery import dispatch_all
from alerts.models import AlertChannel, Delivery
from alerts.webhooks import NO_ANSWER
from tests.api_server import closed_port_url
from tests.test_probe_ssrf import private_forms
from tests.webhook_server import WebhookReceiver

pytestmark = pytest.mark.django_db

REFUSED = "refused by the address policy"
SLACK_SECRET = "XXXXsecretpathXXXX"


@pytest.fixture
def alerting(settings):
    settings.ALERT_EMAILS, settings.ALERT_WEBHOOK_URLS = [], []
    settings.ALERT_ALLOWED_NETWORKS = []
    settings.ALERT_WEBHOOK_TIMEOUT = 0.5
    settings.ALERT_RETRY_BACKOFF = 0.01
    return settings


def fire(n: int = 0):
    return checks.claim(kind="queue_behind", subject=f"q{n}", firing=True, title=f"Queue behind {n}", text="x")


def webhook(target: str) -> AlertChannel:
    channel = AlertChannel(kind="webhook", target=target)
    channel.full_clean()  # saving it is allowed: the address policy applies when it is sent to
    channel.save()
    return channel


NOT_URLS = [
    ("gopher://127.0.0.1:70/_stats", "the scheme must be http or https"),
    ("file:///etc/passwd", "the scheme must be http or https"),
    ("javascript:alert(1)", "the scheme must be http or https"),
    ("not a url", "the scheme must be http or https"),
    ("hooks.example.com/alerts", "the scheme must be http or https"),
    ("http:///alerts", "it has no host"),
    ("https://ops:hunter2@hooks.example.com/x", "user info"),
    ("http://127.0.0.1:80\\@hooks.example.com/", "user info"),
    ("https://hooks.example.com:99999/x", "Port out of range"),
    ("https://hooks.example.com/a b", "space"),
]


@pytest.mark.parametrize(("target", "problem"), NOT_URLS)
def test_a_webhook_target_that_is_not_an_http_url_is_refused_when_saved(alerting, target, problem):
    with pytest.raises(ValidationError) as refused:
        AlertChannel(kind="webhook", target=target).full_clean()
    [message] = refused.value.message_dict["target"]
    assert "is not a valid webhook URL" in message and problem in message
    assert "hunter2" not in message  # the value is named, its user info redacted


@pytest.mark.parametrize(("target", "problem"), NOT_URLS[:3] + NOT_URLS[6:7])
def test_admin_refuses_the_target_naming_the_field_and_value(alerting, client, staff, target, problem):
    staff("add_alertchannel", "view_alertchannel")
    page = client.post("/admin/alerts/alertchannel/add/", {"kind": "webhook", "target": target, "enabled": "on"})
    assert page.status_code == 200 and not AlertChannel.objects.exists()
    [message] = page.context["adminform"].form.errors["target"]
    assert problem in message and "hunter2" not in message  # the form keeps what was typed, the error hides it


def test_alert_webhook_urls_with_user_info_stop_the_start_naming_the_variable(alerting):
    alerting.ALERT_WEBHOOK_URLS = ["https://ops:hunter2@hooks.example.com/x"]
    with pytest.raises(ImproperlyConfigured, match=r"ALERT_WEBHOOK_URLS: 'https://\*\*\*@hooks.example.com/x' is not") as e:
        environment_channels()
    assert "hunter2" not in str(e.value) and "user info" in str(e.value)


def private_targets(port: int) -> list[str]:
    """The probe's forms of loopback, private, link-local and metadata
    addresses (less the two it refuses as URLs: refused here when saved), and
    the metadata service on its own port."""
    return [*private_forms(port)[:-2], "http://169.254.169.254/latest/meta-data/"]


@pytest.mark.parametrize("form", range(len(private_targets(0))))
def test_delivery_to_a_private_address_is_refused_before_connecting(alerting, api_server, form):
    receiver = WebhookReceiver(api_server)
    channel = webhook(private_targets(api_server.port)[form])
    fire()
    assert dispatch_all() == 0
    delivery = Delivery.objects.get()
    assert REFUSED in delivery.last_error and delivery.status == "pending"
    assert api_server.connections == 0 and receiver.arrived == 0
    assert str(api_server.port) not in delivery.last_error and channel.target not in delivery.last_error


def test_allowed_networks_let_a_private_target_through_on_purpose(alerting, api_server):
    alerting.ALERT_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    receiver = WebhookReceiver(api_server)
    webhook(f"http://127.0.0.1:{api_server.port}/hook")
    webhook(f"http://2130706433:{api_server.port}/hook")
    fire()
    assert dispatch_all() == 2 and len(receiver.messages) == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_allowed_networks_also_cover_targets_from_the_environment(alerting, api_server):
    from alerts.channels import register_environment_channels

    receiver = WebhookReceiver(api_server)
    alerting.ALERT_WEBHOOK_URLS = [receiver.url]
    register_environment_channels()
    fire(1)
    assert dispatch_all() == 0 and REFUSED in Delivery.objects.get().last_error
    alerting.ALERT_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    Delivery.objects.update(next_attempt_at=Delivery.objects.get().created_at)
    assert dispatch_all() == 1 and len(receiver.messages) == 1


class RawListener:
    """A TCP port on 127.0.0.1 that, per connection, ``behaviour``s: closes at
    once, sends something that is not HTTP, or says nothing until the end."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            if self.behaviour == "banner":
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            if self.behaviour == "silent":
                self.stop.wait(5)
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.sock.close()


def test_last_error_does_not_tell_which_internal_ports_answer(alerting, api_server):
    """Allowed on purpose (ALERT_ALLOWED_NETWORKS), a staff user still cannot
    map the network: a closed port, a port that hangs up, a non-HTTP service
    and a silent one all read the same. An HTTP answer shows its status."""
    alerting.ALERT_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    listeners = [RawListener(kind) for kind in ("close", "banner", "silent")]
    receiver = WebhookReceiver(api_server)
    receiver.down.set()
    try:
        targets = [closed_port_url(), *(f"http://127.0.0.1:{raw.port}/x" for raw in listeners), receiver.url]
        channels = [webhook(target) for target in targets]
        fire()
        assert dispatch_all() == 0
    finally:
        for raw in listeners:
            raw.close()
    errors = [Delivery.objects.get(channel=channel).last_error for channel in channels]
    assert errors[:4] == [NO_ANSWER] * 4
    assert errors[4] == "webhook answered 503"


def test_refused_targets_read_alike_whatever_answers_behind_them(alerting, api_server):
    WebhookReceiver(api_server)
    open_target, closed_target = webhook(f"http://127.0.0.1:{api_server.port}/hook"), webhook(closed_port_url())
    fire()
    dispatch_all()
    assert Delivery.objects.get(channel=open_target).last_error == Delivery.objects.get(channel=closed_target).last_error


@pytest.fixture
def warnings_log(caplog):
    caplog.set_level(logging.INFO)  # urllib3's retry warnings included
    return caplog


@pytest.mark.parametrize("answer", ["down", "closed"])
def test_a_secret_path_appears_in_no_log_line_and_no_last_error(alerting, api_server, warnings_log, answer):
    alerting.ALERT_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    path = f"/services/T000/B000/{SLACK_SECRET}"
    WebhookReceiver(api_server, path=path).down.set()
    origin = f"http://127.0.0.1:{api_server.port}" if answer == "down" else closed_port_url().removesuffix("/schedules")
    channel = webhook(origin + path)
    fire()
    assert dispatch_all() == 0
    delivery = Delivery.objects.get()
    assert channel.display_target == origin and str(channel) == f"webhook: {origin}"
    assert f"to webhook: {origin} failed" in warnings_log.text
    for text in (delivery.last_error, warnings_log.text):
        assert SLACK_SECRET not in text and "/services" not in text


def test_a_stored_target_with_user_info_is_refused_at_send_without_showing_it(alerting, api_server, warnings_log):
    """A row written around validation (an old one, or QuerySet.create)."""
    alerting.ALERT_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    receiver = WebhookReceiver(api_server)
    channel = AlertChannel.objects.create(kind="webhook", target=receiver.url.replace("//", "//ops:hunter2@"))
    fire()
    assert dispatch_all() == 0 and api_server.connections == 0
    delivery = Delivery.objects.get()
    assert "not a valid webhook URL" in delivery.last_error
    assert channel.display_target == f"http://127.0.0.1:{api_server.port}"
    for text in (delivery.last_error, warnings_log.text):
        assert "hunter2" not in text and "ops:" not in text


def test_lists_in_admin_name_a_webhook_by_its_origin_only(alerting, admin_client, staff, client):
    channel = webhook(f"https://hooks.slack.com/services/T000/B000/{SLACK_SECRET}")
    fire()
    Delivery.objects.update(last_error=NO_ANSWER)
    for path in ("/admin/alerts/alertchannel/", "/admin/alerts/delivery/", "/admin/alerts/alert/"):
        page = admin_client.get(path)
        assert page.status_code == 200 and SLACK_SECRET not in page.content.decode(), path
    assert "https://hooks.slack.com" in admin_client.get("/admin/alerts/alertchannel/").content.decode()
    # Who may change the channel edits its full URL; who may only look sees its origin.
    assert SLACK_SECRET in admin_client.get(f"/admin/alerts/alertchannel/{channel.pk}/change/").content.decode()
    staff("view_alertchannel")
    page = client.get(f"/admin/alerts/alertchannel/{channel.pk}/change/")
    assert page.status_code == 200 and SLACK_SECRET not in page.content.decode()
    assert "https://hooks.slack.com" in page.content.decode()
