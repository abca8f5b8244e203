"""Every outbound client refuses a private address at connect time (issue 7 §1), one test each.

The clients resolve names with the C library; here ``socket.getaddrinfo`` answers from a table
for the ``*.test`` names (what a hostile or misconfigured DNS would say) and passes IP literals
through, and ``socket.create_connection`` refuses anything but loopback (tests/fakes/network.py). Each test also shows
the same client reaching its fake on 127.0.0.1 (so the refusal is the guard's, not a broken
client), and that the refused host received nothing.
"""

from __future__ import annotations

import pytest

from hokan.core.errors import FetchBlocked, LLMConfigError
from hokan.core.llm import GeminiClient, JsonRequest, OpenAICompatClient
from tests.fakes.gemini_server import FakeGeminiServer
from tests.fakes.gbizinfo_server import FakeGbizinfoServer
from tests.fakes.network import connections, dns  # noqa: F401  (fixtures)
from tests.fakes.notion_server import FakeNotionServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.resend_server import FakeResendServer

REQUEST = JsonRequest(system="s", user="u", schema={"type": "object"}, schema_name="t")


def assert_refused_by_the_guard(exc: BaseException, reason: str) -> None:
    cause = exc if isinstance(exc, FetchBlocked) else exc.__cause__
    assert isinstance(cause, FetchBlocked), repr(exc)
    assert cause.reason == reason


# --- LLM providers ---------------------------------------------------------------------------------
def test_the_openai_sdk_client_refuses_a_private_address(fake_openai_server, dns, connections):
    dns.table["llm.test"] = ["10.20.30.40"]
    url = fake_openai_server.v1_url
    assert OpenAICompatClient("openai", "", "test-key", url).complete_json(REQUEST).data == {"ok": True}
    refused = OpenAICompatClient("openai", "", "test-key", url.replace("127.0.0.1", "llm.test"), max_retries=3)
    with pytest.raises(LLMConfigError) as caught:
        refused.complete_json(REQUEST)
    assert_refused_by_the_guard(caught.value, "private")
    with pytest.raises(LLMConfigError):
        refused.embed(["text"])
    assert len(fake_openai_server.requests) == 1  # only the allowed call
    assert set(connections) == {"127.0.0.1"}


def test_the_azure_client_refuses_the_metadata_address(dns, connections):
    dns.table["contoso.openai.test"] = ["169.254.169.254"]
    with FakeOpenAIServer() as server:
        endpoint = f"http://contoso.openai.test:{server.port}"
        client = OpenAICompatClient("azure", "gpt-4o-mini", "test-key", azure_endpoint=endpoint,
                                    azure_api_version="2024-10-21")
        with pytest.raises(LLMConfigError) as caught:
            client.complete_json(REQUEST)
        assert server.requests == []
    assert_refused_by_the_guard(caught.value, "link_local")
    assert connections == []


def test_the_gemini_client_refuses_a_private_address(dns, connections):
    dns.table["gemini.test"] = ["192.168.10.2"]
    with FakeGeminiServer(api_key="k") as server:
        assert GeminiClient("k", base_url=server.base_url).complete_json(REQUEST).data == {"ok": True}
        refused = GeminiClient("k", base_url=f"http://gemini.test:{server.port}", max_retries=3)
        with pytest.raises(LLMConfigError) as caught:
            refused.complete_json(REQUEST)
        with pytest.raises(LLMConfigError):
            refused.embed(["text"])
        assert len(server.requests) == 1
    assert_refused_by_the_guard(caught.value, "private")
    assert set(connections) == {"127.0.0.1"}


def test_a_loopback_base_url_is_refused_unless_allow_listed(settings, connections):
    settings.HOKAN_FETCH_ALLOW_HOSTS = []
    with FakeOpenAIServer() as server:
        with pytest.raises(LLMConfigError) as caught:
            OpenAICompatClient("perplexity", "sonar", "test-key", server.base_url).complete_json(REQUEST)
        assert server.requests == []
    assert_refused_by_the_guard(caught.value, "loopback")
    assert connections == []


# --- estimate: Resend and Notion ------------------------------------------------------------------
def test_the_resend_mailer_refuses_a_private_address(settings, dns, connections):
    from hokan.estimate import mail

    dns.table["resend.test"] = ["10.0.0.25"]
    message = mail.Mail(to=["tanaka@example.co.jp"], subject="件名", text="本文", html="<p>本文</p>")
    with FakeResendServer(api_key="re_test") as resend:
        settings.RESEND_API_KEY = "re_test"
        settings.RESEND_API_BASE_URL = resend.base_url
        assert mail.send(message) == "resend"
        settings.RESEND_API_BASE_URL = f"http://resend.test:{resend.port}"
        with pytest.raises(mail.MailError) as caught:
            mail.send(message)
        assert len(resend.requests) == 1
    assert_refused_by_the_guard(caught.value, "private")
    assert set(connections) == {"127.0.0.1"}


def test_the_notion_client_refuses_a_private_address_without_retrying(settings, dns, connections):
    from hokan.estimate import notion

    dns.table["notion.test"] = ["172.16.5.5"]
    contact = {"name": "田中太郎", "company": "株式会社テスト", "email": "tanaka@example.co.jp"}
    with FakeNotionServer(api_key="secret_test") as server:
        settings.NOTION_API_KEY = "secret_test"
        settings.NOTION_DATABASE_ID = "db"
        settings.NOTION_API_BASE_URL = server.base_url
        assert notion.create_page(contact)
        settings.NOTION_API_BASE_URL = f"http://notion.test:{server.port}"
        with pytest.raises(notion.NotionError) as caught:
            notion.create_page(contact, sleep=lambda s: pytest.fail("a refused address is not retried"))
        assert len(server.requests) == 1
    assert_refused_by_the_guard(caught.value, "private")
    assert dns.lookups == ["notion.test"]
    assert set(connections) == {"127.0.0.1"}


# --- registry: gBizINFO ---------------------------------------------------------------------------
def test_the_gbizinfo_client_refuses_dns_rebinding_at_connect_time(dns, connections):
    from hokan.registry.gbizinfo import GbizinfoClient

    # Public for the pre-flight check of the URL, loopback when the connection is opened.
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    dns.table["gbiz.test"] = lambda: next(answers)
    with FakeGbizinfoServer(token="test-token") as server:
        base = server.base_url.replace("127.0.0.1", "gbiz.test")
        with GbizinfoClient(token="test-token", base_url=base, min_interval_s=0.0,
                            allow_hosts=["127.0.0.1"]) as client, pytest.raises(FetchBlocked) as caught:
            client.get("5070001000715")
        assert server.requests == []
    assert caught.value.reason == "loopback"
    assert dns.lookups == ["gbiz.test", "gbiz.test"]
    assert connections == []
