"""A registry imported once per test session from the shared EDINET and gBizINFO files.

The import runs outside the per-test transactions (django_db_blocker), so its records are
visible to every test of the session; they are deleted at the end. Tests that write roll back
their own changes as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hokan.registry.import_registry import ImportReport, import_registry


@dataclass
class SharedRegistry:
    folder: Path
    edinet_cp932: Path
    edinet_utf8: Path
    it_companies: Path
    tochigi: Path
    reports: dict[str, ImportReport]


@pytest.fixture(scope="session")
def registry_files(shared_data: Path) -> SharedRegistry:
    folder = shared_data / "company_truth"
    files = SharedRegistry(
        folder=folder,
        edinet_cp932=folder / "edinet" / "EdinetcodeDlInfo_20260811_cp932.csv",
        edinet_utf8=folder / "edinet" / "EdinetcodeDlInfo_20260811_utf8.csv",
        it_companies=folder / "gbizinfo_derived" / "it_companies_gbizinfo.csv",
        tochigi=folder / "gbizinfo_derived" / "tochigi_companies_sample10.csv",
        reports={},
    )
    for path in (files.edinet_cp932, files.edinet_utf8, files.it_companies, files.tochigi):
        if not path.is_file():
            pytest.skip(f"{path} not found")
    return files


@pytest.fixture(scope="session")
def shared_registry(registry_files: SharedRegistry, django_db_setup, django_db_blocker):
    """The shared EDINET code list (CP932), then the two gBizINFO CSVs, imported once."""
    from hokan.registry.models import CompanyRecord

    with django_db_blocker.unblock():
        for name in ("edinet_cp932", "it_companies", "tochigi"):
            registry_files.reports[name] = import_registry(getattr(registry_files, name))
    yield registry_files
    with django_db_blocker.unblock():
        CompanyRecord.objects.all().delete()
