"""Size presets of the demo generator: params.yaml's demo.preset, overrides, errors, and mind-small's shape."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from newsforge.cli import main
from training.data.demo import DemoConfig, DemoReport
from training.data.demo.config import REALISM_ON
from training.data.demo.generator import REPORT_FILE, Users, _spawn, make_news, make_quality, make_users
from training.data.demo.presets import preset_config, resolve

REPO_PARAMS = Path(__file__).resolve().parents[4] / "params.yaml"
SECTION = {"preset": "small", "presets": {"small": {"seed": 1, "users": 300, "news": 200, "days": 2},
                                          "big": {"users": 9000, "news": 8000}}}


def test_repo_presets_give_demo_its_realism_and_signals_and_mind_small_its_counts():
    # make demo's data: the realism features (issue 22) and the user signals (issue 24)
    assert preset_config(REPO_PARAMS, "demo") == DemoConfig(**REALISM_ON, user_signals=True)
    big = preset_config(REPO_PARAMS, "mind-small")
    assert (big.n_users, big.n_news, big.n_days, big.start_day) == (50_000, 51_282, 7, "2019-11-09")
    assert abs(big.impressions_per_day * big.n_days - 156_965) <= big.n_days
    assert yaml.safe_load(REPO_PARAMS.read_text())["demo"]["preset"] == "demo"


def test_section_preset_then_section_keys_then_command_line():
    assert resolve(SECTION, "p.yaml") == DemoConfig(seed=1, n_users=300, n_news=200, n_days=2)
    assert resolve(SECTION, "p.yaml", preset="big").n_users == 9000
    section = {**SECTION, "seed": 5, "users": 400}
    config = resolve(section, "p.yaml", overrides={"users": 500, "news": None, "impressions_per_day": 50})
    assert (config.seed, config.n_users, config.n_news, config.impressions_per_day) == (5, 500, 200, 50)


def test_realism_true_sets_the_intended_values_and_a_field_beside_it_wins():
    assert resolve({"seed": 7, "realism": True}, "p.yaml") == DemoConfig(seed=7, **REALISM_ON)
    assert resolve({"realism": False}, "p.yaml") == DemoConfig()
    assert resolve({"realism": True, "story_rate": 0.2}, "p.yaml") == DemoConfig(**{**REALISM_ON, "story_rate": 0.2})
    with pytest.raises(ValueError, match=r"p\.yaml: demo: realism must be true or false, got 'yes'"):
        resolve({"realism": "yes"}, "p.yaml")


def test_flat_section_without_preset_is_read_as_values():
    assert resolve({"seed": 7, "users": 200, "news": 300}, "p.yaml") == DemoConfig(seed=7, n_users=200, n_news=300)


def test_unknown_preset_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"p\.yaml: unknown demo preset 'mind-large'; known presets: big, small"):
        resolve(SECTION, "p.yaml", preset="mind-large")
    with pytest.raises(ValueError, match=r"unknown demo preset 'demo'; known presets: \(none\)"):
        resolve({"preset": "demo"}, "p.yaml")


def test_unknown_key_names_the_file_and_preset():
    bad = {"preset": "small", "presets": {"small": {"userz": 3}}}
    with pytest.raises(ValueError, match=r"p\.yaml: demo\.presets\.small: unknown demo setting\(s\) \['userz'\]"):
        resolve(bad, "p.yaml")


def test_cli_unknown_preset_is_a_clear_error_exit_2(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"demo": SECTION}))
    assert main(["data", "generate", str(tmp_path / "out"), "--params", str(params), "--preset", "nope"]) == 2
    assert "unknown demo preset 'nope'; known presets: big, small" in capsys.readouterr().err
    assert main(["data", "generate", str(tmp_path / "out"), "--params", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: no such params file" in capsys.readouterr().err


def test_cli_mind_small_preset_scaled_down_keeps_its_shape(tmp_path):
    """mind-small at 1/100 of its users, news and impressions (flags override the preset): the counts come
    from the flags, the rest (days, dates, candidate and history distributions) from the preset."""
    out = tmp_path / "ms"
    assert main(["data", "generate", str(out), "--params", str(REPO_PARAMS), "--preset", "mind-small",
                 "--users", "500", "--news", "513", "--impressions-per-day", "224"]) == 0
    report = DemoReport.from_json((out / REPORT_FILE).read_text())
    assert report.counts["users"] == 500 and report.counts["news"] == 513
    assert report.counts["impressions"] == 224 * 7
    assert [d["day"] for d in report.days] == [f"2019-11-{d:02d}" for d in range(9, 16)]
    assert 33 <= report.stats["candidates_per_impression"]["mean"] <= 42  # MIND-small: ~37
    assert 26 <= report.stats["history"]["mean"] <= 40                     # MIND-small: ~32
    assert json.loads((out / REPORT_FILE).read_text())["config"]["seed"] == 42


def test_affinity_grid_equals_elementwise_affinity():
    config = DemoConfig.tiny()
    rngs = _spawn(config.seed)
    news, _ = make_quality(config, make_news(config, rngs["news"]), rngs["quality"])
    users: Users = make_users(config, rngs["users"])
    u, n = np.arange(config.n_users), np.arange(config.n_news)
    grid = users.affinity_grid(u, n, 0, news)
    assert np.array_equal(grid, users.affinity(u[:, None], n[None, :], 0, news))
    assert (grid == 3.0).any() and grid.min() >= -4.0  # the clip and the favourite bonus are exercised
