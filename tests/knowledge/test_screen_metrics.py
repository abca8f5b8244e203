"""Pattern B on a generated recording (issue 12 §3, §8): a Japanese live dashboard rendered by
Chromium step by step and encoded by ffmpeg, so its true numbers are known; the series read back
must equal what was rendered, near-duplicate frames are not read twice, and bad input is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from hokan.core.errors import DocumentUnreadable
from hokan.knowledge.demo_recording import DEFAULT_SCHEDULE, render_recording
from hokan.knowledge.screen_metrics_extractor import Sample, extract_screen_metrics, trend

pytestmark = pytest.mark.slow  # Chromium and ffmpeg subprocesses


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path: Path) -> Path:
    settings.HOKAN_DATA_DIR = tmp_path / "data"
    return settings.HOKAN_DATA_DIR


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    return render_recording(tmp_path_factory.mktemp("rec") / "live.mp4", DEFAULT_SCHEDULE, step_s=1.0, fps=10)


def test_the_series_read_from_the_recording_equals_what_was_rendered(recording: Path):
    from hokan.core.documents import get_engine

    ticks = []
    result = extract_screen_metrics(recording, fps=2, engines=[get_engine("ppocrv6")],
                                    on_frame=lambda done, total: ticks.append((done, total)))
    assert result.duration_s == 5.0 and result.stopped == "" and result.problems == []
    assert result.frames_sampled == 10 and ticks[-1] == (10, 10)
    assert result.frames_read == len(DEFAULT_SCHEDULE)  # the second frame of each step is a near-duplicate
    for metric in ("viewers", "likes", "comments"):
        expected = [(float(i), step[metric]) for i, step in enumerate(DEFAULT_SCHEDULE)]
        assert [(s.t_s, s.value) for s in result.series[metric]] == expected, metric
    viewers = result.trends["viewers"]
    values = [step["viewers"] for step in DEFAULT_SCHEDULE]
    assert (viewers.peak, viewers.peak_t_s, viewers.first, viewers.last) == (max(values), 4.0, values[0], values[-1])
    assert viewers.average == pytest.approx(sum(values) / len(values))  # each value on screen 1 s of 5
    mean_t, mean_v = 2.0, sum(values) / 5
    slope = sum((t - mean_t) * (v - mean_v) for t, v in enumerate(values)) / sum((t - mean_t) ** 2 for t in range(5))
    assert viewers.growth_per_minute == pytest.approx(slope * 60, abs=1e-3)


def test_frames_are_bounded_and_a_long_video_is_sampled_over_its_whole_length(recording: Path):
    from hokan.core.documents import get_engine

    result = extract_screen_metrics(recording, fps=10, max_frames=3, engines=[get_engine("ppocrv6")])
    assert result.frames_sampled == 3 and result.fps == pytest.approx(0.6)
    assert [s.t_s for s in result.series["viewers"]] == [0.0, pytest.approx(1.7), pytest.approx(3.4)]
    assert [s.value for s in result.series["viewers"]] == [1204, 1352, 1549]
    stopped = extract_screen_metrics(recording, fps=2, max_seconds=1e-9, engines=[get_engine("ppocrv6")])
    assert "時間の上限" in stopped.stopped and stopped.frames_read == 0 and stopped.series["viewers"] == []


def test_what_is_no_video_is_refused(tmp_path: Path, settings):
    not_video = tmp_path / "live.mp4"
    not_video.write_bytes(b"\x00" * 2048)
    with pytest.raises(DocumentUnreadable, match="動画として読めません"):
        extract_screen_metrics(not_video)
    with pytest.raises(DocumentUnreadable, match="ファイルを開けません"):
        extract_screen_metrics(tmp_path / "missing.mp4")
    settings.HOKAN_KNOWLEDGE_SCREEN_MAX_BYTES = 1000
    with pytest.raises(DocumentUnreadable, match="大きすぎます"):
        extract_screen_metrics(not_video)


def test_a_single_sample_has_no_growth_and_its_own_average():
    one = trend([Sample("likes", 2.0, 10, "count", "10", "10", 1.0, 20)], duration_s=5.0)
    assert (one.peak, one.average, one.growth_per_minute) == (10, 10.0, None)


@pytest.mark.django_db
def test_the_command_stores_the_series_on_an_analysis(recording: Path, knowledge_index):
    import typer
    from typer.testing import CliRunner

    from hokan.knowledge.command import app as knowledge_app
    from hokan.knowledge.models import ScreenMetricSample
    from hokan.knowledge.service import store_analysis
    from tests.knowledge.conftest import analysis_payload

    cli = typer.Typer()
    cli.add_typer(knowledge_app, name="knowledge")
    analysis = store_analysis(analysis_payload("tt-rec"), index_obj=knowledge_index)
    args = ["knowledge", "screen", str(recording), "--fps", "1", "--video-id", "tt-rec"]
    for _ in range(2):  # reading the recording again updates the same samples
        result = CliRunner().invoke(cli, args, env={"COLUMNS": "160"})
        assert result.exit_code == 0, result.output
    assert "視聴者数" in result.output and "保存しました" in result.output
    assert ScreenMetricSample.objects.filter(analysis=analysis).count() == 15
    peak = analysis.sales.get(metric="peak_viewers")
    assert (peak.value, peak.source, peak.shown) == (1826, "recording", "1,826")
    unknown = CliRunner().invoke(cli, ["knowledge", "screen", str(recording), "--video-id", "nope"])
    assert unknown.exit_code == 1 and "ありません" in unknown.output
