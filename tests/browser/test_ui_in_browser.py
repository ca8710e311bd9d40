"""The Dagster UI, the MLflow UI and the HTML report as a person sees them, in Debian's Chromium.

One tiny project (git + DVC) gets ``*ctr_model`` materialised for one day through the ``dagster`` CLI; then
``dagster dev`` and ``mlflow server`` serve it on loopback ports and Playwright drives ``/usr/bin/chromium``
(``apt-get install chromium``; Playwright's own browser download is not used). Every checked page is saved
as a full-page screenshot under ``$NEWSFORGE_SCREENSHOTS`` (``.ci/run`` keeps ``.ci/screenshots/``), else under
the test's temporary folder; ``asset_graph.png`` is the picture in the README (``docs/asset_graph.png``).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from project import finished_runs, make_project, mlflow_client, project_env, run

CHROMIUM = Path("/usr/bin/chromium")
DAY = "2019-11-11"
TINY = """
ops:
  news_encoder:
    config: {hidden_size: 32, num_layers: 1, max_len: 32, max_epochs: 1, batch_size: 64}
  user_encoder:
    config: {hidden_size: 32, num_layers: 1, max_epochs: 1, max_history: 20}
  ctr_model:
    config: {max_epochs: 2, embedding_dim: 8, seed: 1}
"""
UI_TIMEOUT_MS = 60_000  # a cold page on a busy 2-core machine: GraphQL queries of a fresh instance
VIEWPORT = {"width": 1600, "height": 1000}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
expect = sync_api.expect


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A command started in its own process group, logging to a file; stopped with its whole group."""

    def __init__(self, name: str, cmd: list[str], root: Path, env: dict[str, str], log: Path):
        self.name, self.log = name, log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def wait_until(self, ready, what: str, timeout: float = 240) -> None:
        """Poll ``ready()`` (False or an exception: not yet) until true; fail with the server's log tail."""
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before {what}:\n{self.log_tail()}")
            try:
                if ready():
                    return
            except OSError as exc:  # connection refused, reset, HTTP errors: not up yet
                last = exc
            time.sleep(0.5)
        raise AssertionError(f"{self.name}: no {what} within {timeout:.0f}s (last error: {last}):\n{self.log_tail()}")

    def stop(self) -> None:
        """Ctrl-C to the group (``dagster dev`` shuts its children down on SIGINT, not SIGTERM), then SIGKILL."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        try:  # children that outlived their parent in the same group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _get(url: str, data: bytes | None = None) -> bytes:
    headers = {"Content-Type": "application/json"} if data else {}
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as resp:
        return resp.read()


def _code_location_loaded(dagster_url: str) -> bool:
    query = b'{"query": "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"}'
    entries = json.loads(_get(f"{dagster_url}/graphql", query))["data"]["workspaceOrError"]["locationEntries"]
    return bool(entries) and all(entry["loadStatus"] == "LOADED" for entry in entries)


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A tiny project with ``*ctr_model`` materialised for DAY, served by ``dagster dev`` and ``mlflow server``."""
    root = make_project(tmp_path_factory.mktemp("browser"))
    logs = tmp_path_factory.mktemp("server_logs")
    mlflow_url, dagster_url = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
    env = {**project_env(root), "NEWSFORGE_MLFLOW_UI_URL": mlflow_url}  # the assets' `mlflow_run` links
    mlflow_dir = root / ".newsforge" / "mlflow"
    mlflow_dir.mkdir(parents=True, exist_ok=True)
    servers = [
        Server("mlflow server", ["mlflow", "server", "--backend-store-uri", f"sqlite:///{mlflow_dir / 'mlflow.db'}",
                                 "--host", "127.0.0.1", "--port", mlflow_url.rsplit(":", 1)[1], "--workers", "1"],
               root, env, logs / "mlflow.log"),
        Server("dagster dev", ["dagster", "dev", "-m", "orchestration.definitions",
                               "-h", "127.0.0.1", "-p", dagster_url.rsplit(":", 1)[1]], root, env, logs / "dagster.log"),
    ]
    try:
        # both stores exist (and are migrated) before the CLI writes to them
        servers[0].wait_until(lambda: _get(f"{mlflow_url}/health") == b"OK", "answer on /health")
        servers[1].wait_until(lambda: _code_location_loaded(dagster_url), "loaded code location")
        config = root / "tiny.yaml"
        config.write_text(TINY)
        proc = subprocess.run(["dagster", "asset", "materialize", "-m", "orchestration.definitions",
                               "--select", "*ctr_model", "--partition", DAY, "-c", str(config)],
                              cwd=root, env=env, capture_output=True, text=True, timeout=1200)
        out = proc.stdout + proc.stderr
        # a lost gate fails the run (blocking check) after ctr_model was materialised; nothing else may fail
        assert proc.returncode == 0 or "Steps failed: ['ctr_model']." in out, out[-4000:]
        yield {"root": root, "mlflow_url": mlflow_url, "dagster_url": dagster_url}
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots go: ``$NEWSFORGE_SCREENSHOTS``, else a temporary folder."""
    configured = os.environ.get("NEWSFORGE_SCREENSHOTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _asset_keys_and_groups() -> tuple[list[str], set[str]]:
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    return [key.to_user_string() for key in keys], {graph.get(key).group_name for key in keys}


def _shows(label: str, name: str) -> bool:
    """Whether a node label shows ``name``: in full, or middle-truncated (``populari…_baseline``)."""
    if "…" not in label:
        return label == name
    head, tail = label.split("…", 1)
    return name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail)


def test_asset_graph_shows_every_asset(ui, context, shots):
    """The global lineage with every group expanded, laid out top-down and fitted: one node per asset."""
    names, groups = _asset_keys_and_groups()
    page = context.new_page()
    page.goto(f"{ui['dagster_url']}/asset-groups")
    for group in groups:  # collapsed, the graph shows one box per group
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    page.get_by_role("button", name="Hide navigation").click()
    page.get_by_role("button").filter(has=page.get_by_role("img", name="panel_show_right")).click()  # asset tree
    toolbar = page.locator("#zoom-slider-container")
    for item in ("Expand all groups", "Change graph to vertical orientation"):
        toolbar.get_by_role("button", name="settings").click()
        page.get_by_role("menuitem").filter(has_text=item).click()
    viewport = page.locator("[data-svg-viewport]")
    box = viewport.bounding_box()
    viewport.dblclick(position={"x": 10, "y": box["height"] - 10})  # double-click on the background: fit all
    labels = page.locator("[data-svg-viewport] [class*='AssetNode_assetName']")
    expect(labels).to_have_count(len(names))
    for i in range(len(names)):
        expect(labels.nth(i)).to_be_in_viewport()
    shown = labels.all_inner_texts()
    missing = [name for name in names if not any(_shows(label, name) for label in shown)]
    assert not missing, f"assets without a node in the graph: {missing}; node labels: {shown}"
    page.screenshot(path=shots / "asset_graph.png", full_page=True)


def test_ctr_model_page_and_its_mlflow_run(ui, context, shots):
    """ctr_model's page: latest materialisation (day, registered version, MLflow run link) and the gate's
    result as the run logged it; the link opens the MLflow UI on that run with its lineage tags."""
    client = mlflow_client(ui["root"])
    ctr = finished_runs(client, "ctr_model")[0]
    tags, run_id = ctr.data.tags, ctr.info.run_id
    run_url = f"{ui['mlflow_url']}/#/experiments/{ctr.info.experiment_id}/runs/{run_id}"
    page = context.new_page()
    page.goto(f"{ui['dagster_url']}/assets/ctr_model")

    latest = page.get_by_text("Latest materialization", exact=True).locator("..")
    expect(latest).to_contain_text(DAY)
    for key, value in (("registered_version", tags["gate.candidate"]), ("mlflow_run_id", run_id),
                       ("data_version", tags["data.version"])):
        row = page.locator("tr").filter(has=page.get_by_text(key, exact=True))
        expect(row.locator("td").last).to_have_text(value)
    link = page.get_by_role("link", name=run_url, exact=True)
    expect(link).to_have_attribute("href", run_url)
    page.screenshot(path=shots / "ctr_model_overview.png", full_page=True)

    page.get_by_role("tab", name="Checks").click()
    page.get_by_text("beats_champion", exact=True).first.click()
    expected = "Passed" if tags["gate.passed"] == "true" else "Failed"
    expect(page.get_by_text("This is a blocking asset check.")).to_be_visible()
    expect(page.get_by_text(tags["gate.reason"], exact=True)).to_be_visible()  # beats_champion's description
    expect(page.get_by_text("Evaluation result", exact=True).locator("..")).to_contain_text(expected)
    page.screenshot(path=shots / "ctr_model_checks.png", full_page=True)

    page.locator("a[role=tab]", has_text="Overview").click()  # the asset's tab (the check pane has one too)
    with context.expect_page() as opened:
        page.get_by_role("link", name=run_url, exact=True).click()  # target=_blank: a new tab
    mlflow_page = opened.value
    assert mlflow_page.url == run_url
    expect(mlflow_page.get_by_role("heading", name=ctr.info.run_name, exact=True)).to_be_visible()
    expect(mlflow_page.get_by_text(run_id, exact=True).first).to_be_visible()
    for key in ("dagster.partition", "data.version", "git.commit", "upstream.user_embeddings.run_id", "gate.passed"):
        tag = mlflow_page.locator("span").filter(has=mlflow_page.get_by_title(key, exact=True)).filter(
            has=mlflow_page.get_by_title(tags[key], exact=True))
        expect(tag.first).to_be_visible()
        expect(tag.first).to_have_text(f"{key}: {tags[key]}")
    assert tags["dagster.partition"] == DAY
    assert tags["upstream.user_embeddings.run_id"] == finished_runs(client, "user_embeddings")[0].info.run_id
    mlflow_page.screenshot(path=shots / "mlflow_ctr_model_run.png", full_page=True)


def test_html_report_renders_tables_and_figures(ui, context, shots, tmp_path):
    """``newsforge report --html``: one self-contained page; its tables show and every figure decodes."""
    out = tmp_path / "report.html"
    run(["newsforge", "report", "--partition", DAY, "--html", str(out)], ui["root"])
    page = context.new_page()
    page.goto(out.as_uri())
    expect(page.locator("table").first).to_be_visible()
    expect(page.locator("table").first).to_contain_text("ctr_model")
    images = page.locator("img")
    expect(images.first).to_be_attached()
    page.wait_for_function("Array.from(document.images).every(img => img.complete)")
    widths = page.evaluate("Array.from(document.images).map(img => [img.alt, img.naturalWidth])")
    assert widths and all(width > 0 for _, width in widths), f"figures that did not decode: {widths}"
    assert all(page.evaluate("Array.from(document.images).map(img => img.src.startsWith('data:image/'))")), \
        "the report must embed its figures"
    page.screenshot(path=shots / "report.png", full_page=True)
