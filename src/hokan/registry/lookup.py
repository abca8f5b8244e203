"""Looking a company up in the registry: the local records first, then gBizINFO online, then
the local records again ($0 for us; gBizINFO is free with a token).

``lookup_company(corporate_number=..., name=..., prefecture=...)`` → ``MatchResult``
(``hokan.registry.match``):

1. ``match_lead`` on the local records (EDINET / gBizINFO imports, earlier lookups);
2. when nothing matched and ``GBIZINFO_API_TOKEN`` is set: ``ask_gbizinfo`` — by 法人番号
   when the company has a valid one, else by exact normalised name — stores what gBizINFO
   knows as local records;
3. when that stored something, ``match_lead`` again.

An ambiguous local match is not sent to gBizINFO (asking again cannot make a shared name
unique). A gBizINFO failure (token, rate limit, outage, bad data) is logged and never raised:
the caller goes on with rules and the LLM.

``fetch_company(corporate_number)`` is the online half by 法人番号 on its own: it asks gBizINFO
and stores the answer (``gbizinfo_reader.store``), raising what the client raises.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import quote

from django.conf import settings

from hokan.core import ja
from hokan.core.errors import InputError
from hokan.registry.errors import RegistryError
from hokan.registry.match import MatchResult, match_lead
from hokan.registry.models import CompanyRecord

if TYPE_CHECKING:
    from hokan.registry import gbizinfo

logger = logging.getLogger("hokan.registry.lookup")


def fetch_company(corporate_number: str, *, client: gbizinfo.GbizinfoClient | None = None) -> CompanyRecord | None:
    """Look a 法人番号 up in gBizINFO and store the answer; the stored record, or None if unknown.

    client: a ``GbizinfoClient`` (default: one from the settings, closed afterwards).

    Raises:
        ValueError: not a valid 法人番号. RegistryError (token, rate limit, outage, bad request),
        FetchBlocked (the SSRF guard refused the base URL), InputError (the answer does not
        validate; nothing of it is stored).
    """
    from hokan.registry import gbizinfo, gbizinfo_reader

    own = client is None
    client = client or gbizinfo.GbizinfoClient.from_settings()
    try:
        info = client.get(corporate_number)
        if info is None:
            return None
        number = ja.parse_corporate_number(corporate_number)
        return gbizinfo_reader.store([info], source_url=client.url_for(f"/v2/hojin/{quote(number or '')}"))[0]
    finally:
        if own:
            client.close()


def ask_gbizinfo(*, corporate_number: str = "", name: str = "", prefecture: str = "") -> bool:
    """Look the company up online in gBizINFO (by 法人番号, else by exact normalised name) and
    store what it knows in the local registry. True when something was stored.

    Only records whose ``company_name_key`` equals the name's are stored (gBizINFO matches
    names partially). Never raises for a gBizINFO failure: logs a warning and returns False.
    """
    from hokan.registry import gbizinfo, gbizinfo_reader

    try:
        number = ja.parse_corporate_number(corporate_number or "")
        if number:
            return fetch_company(number) is not None
        key = ja.company_name_key(name)
        with gbizinfo.GbizinfoClient.from_settings() as client:
            infos = client.search(name=name, prefecture=prefecture, limit=10)
            same = [i for i in infos if ja.company_name_key(str(i.get("name", ""))) == key]
            if same:
                gbizinfo_reader.store(same, source_url=client.url_for("/v2/hojin"))
            return bool(same)
    except (RegistryError, InputError) as exc:
        logger.warning("%s gBizINFO lookup failed: %s", name or corporate_number, exc)
        return False


def lookup_company(*, corporate_number: str = "", name: str = "", prefecture: str = "") -> MatchResult:
    """The company's registry match: local, else gBizINFO then local again (module docstring)."""
    result = match_lead(corporate_number=corporate_number, name=name, prefecture=prefecture)
    if result.status == "not_found" and settings.GBIZINFO_API_TOKEN:
        if ask_gbizinfo(corporate_number=corporate_number, name=name, prefecture=prefecture):
            result = match_lead(corporate_number=corporate_number, name=name, prefecture=prefecture)
    return result
