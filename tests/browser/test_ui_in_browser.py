"""The Dagster UI, the MLflow UI and the HTML report as a person sees them, in Debian's Chromium.

One tiny project (git + DVC, five days of data) gets ``*ctr_model`` materialised for one day and the daily
upstream of ``ctr_model`` for the next two through the ``dagster`` CLI; ``dagster dev`` and ``mlflow server``
serve it on loopback ports and Playwright drives ``/usr/bin/chromium``
(``apt-get install chromium``; Playwright's own browser download is not used). Every checked page is saved
as a full-page screenshot under ``$NEWSFORGE_SCREENSHOTS`` (``.ci/run`` keeps ``.ci/screenshots/``), else under
the test's temporary folder; ``asset_graph.png`` is the picture in the README (``docs/asset_graph.png``).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from project import TINY_PARAMS, finished_runs, make_project, mlflow_client, project_env, run

CHROMIUM = Path("/usr/bin/chromium")
DAY = "2019-11-11"
# ctr_model for day D trains on the days before D (window_days 4: all but the last train, the last early-stops),
# so the backfill's first day needs two days before it: five days of data, 2019-11-09..13
PARAMS = TINY_PARAMS.replace("days: 3", "days: 5")
BACKFILL = ["2019-11-11", "2019-11-12", "2019-11-13"]  # DAY, then the two days materialised upstream only
DAILY_UPSTREAM = "impressions,popularity_baseline,user_encoder,user_embeddings"  # ctr_model's daily inputs
BACKFILL_TIMEOUT_MS = 8 * 60_000  # three days trained by the daemon's run, on a busy 2-core machine
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


def _graphql(dagster_url: str, query: str, **variables) -> dict:
    body = json.dumps({"query": query, "variables": variables}).encode()
    answer = json.loads(_get(f"{dagster_url}/graphql", body))
    assert "errors" not in answer, f"GraphQL errors: {answer['errors']}"
    return answer["data"]


def _code_location_loaded(dagster_url: str) -> bool:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
    entries = _graphql(dagster_url, query)["workspaceOrError"]["locationEntries"]
    return bool(entries) and all(entry["loadStatus"] == "LOADED" for entry in entries)


def _server_logs(ui: dict) -> str:
    return "\n".join(f"--- {server.name} ({server.log}), last lines:\n{server.log_tail()}" for server in ui["servers"])


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A tiny project with ``*ctr_model`` materialised for DAY and ctr_model's daily upstream for the other
    BACKFILL days, served by ``dagster dev`` and ``mlflow server``."""
    assert "days: 5" in PARAMS, f"five days of demo data expected (tests/project.py changed?):\n{PARAMS}"
    root = make_project(tmp_path_factory.mktemp("browser"), PARAMS)
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
                               "-h", "127.0.0.1", "-p", dagster_url.rsplit(":", 1)[1]],
               root, env, logs / "dagster.log"),
    ]
    try:
        # both stores exist (and are migrated) before the CLI writes to them
        servers[0].wait_until(lambda: _get(f"{mlflow_url}/health") == b"OK", "answer on /health")
        servers[1].wait_until(lambda: _code_location_loaded(dagster_url), "loaded code location")
        config = root / "tiny.yaml"
        config.write_text(TINY)

        def materialize(select: str, day: str) -> tuple[int, str]:
            proc = subprocess.run(["dagster", "asset", "materialize", "-m", "orchestration.definitions",
                                   "--select", select, "--partition", day, "-c", str(config)],
                                  cwd=root, env=env, capture_output=True, text=True, timeout=1200)
            return proc.returncode, proc.stdout + proc.stderr

        code, out = materialize("*ctr_model", DAY)
        # a candidate below the floor fails the run (blocking check, ERROR) after ctr_model was materialised;
        # nothing else may fail
        assert code == 0 or "Steps failed: ['ctr_model']." in out, out[-4000:]
        for day in BACKFILL[1:]:  # what ctr_model reads on the backfill's other days
            code, out = materialize(DAILY_UPSTREAM, day)
            assert code == 0, f"{DAILY_UPSTREAM} for {day} failed ({code}):\n{out[-4000:]}"
        yield {"root": root, "mlflow_url": mlflow_url, "dagster_url": dagster_url, "servers": servers}
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


def _menu_item(page, toolbar, item: str, attempts: int = 4) -> None:
    """Pick ``item`` from the graph's settings menu. While the graph lays itself out again (slow on a loaded
    machine) the menu re-renders and detaches its items, so reopen it and retry a few times."""
    for attempt in range(attempts):
        try:
            toolbar.get_by_role("button", name="settings").click()
            page.get_by_role("menuitem").filter(has_text=item).click(timeout=20_000)
            return
        except sync_api.TimeoutError:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")


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
        _menu_item(page, toolbar, item)
    viewport = page.locator("[data-svg-viewport]")
    box = viewport.bounding_box()
    labels = page.locator("[data-svg-viewport] [class*='AssetNode_assetName']")
    # double-click on the background: fit all. The graph draws only the nodes in view, so a fit made before the
    # expanded layout settled (one CI run on a busy machine: 9 of 28 nodes) is made again.
    for attempt in range(5):
        viewport.dblclick(position={"x": 10, "y": box["height"] - 10})
        try:
            expect(labels).to_have_count(len(names), timeout=6_000)
            break
        except AssertionError:
            if attempt == 4:
                raise
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
    users = [r for r in finished_runs(client, "user_embeddings") if r.data.tags.get("dagster.partition") == DAY]
    assert tags["upstream.user_embeddings.run_id"] == users[0].info.run_id  # DAY's, not a later day's
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


BACKFILL_RUNS = """
query ($backfill: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $backfill}]}) {
    ... on Runs { results { runId status } }
  }
}"""
STEP_FAILURES = """
query ($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection { events { ... on ExecutionStepFailureEvent { stepKey error { message } } } }
  }
}"""


def _ctr_model_state(client) -> tuple[set[str], int, str]:
    """(ids of ctr_model's finished MLflow runs, its latest registered version, its champion version or '')."""
    versions = [int(v.version) for v in client.search_model_versions("name='ctr_model'")]
    aliases = client.get_registered_model("ctr_model").aliases
    return {r.info.run_id for r in finished_runs(client, "ctr_model")}, max(versions), str(aliases.get("champion", ""))


def test_three_day_backfill_launched_from_the_ui(ui, context, shots):
    """ctr_model's Materialize… dialog: the range BACKFILL typed into the partition field, one backfill
    launched (single-run policy: one run); the daemon runs it, its page shows it finished, and the asset's
    Partitions tab shows the three days materialised by that run. MLflow: one run per day, in date order,
    consecutive registered versions, each day gated against the champion the day before left."""
    client = mlflow_client(ui["root"])
    before, latest, champion = _ctr_model_state(client)
    page = context.new_page()
    page.goto(f"{ui['dagster_url']}/assets/ctr_model")
    page.get_by_role("button", name="Materialize…").click()  # a partitioned asset: the partition dialog
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Launch runs to materialize ctr_model")
    dialog.get_by_role("button", name="Show all partitions").click()  # it offers the last 90 days first
    field = dialog.get_by_role("textbox")
    field.fill(f"[{BACKFILL[0]}...{BACKFILL[-1]}]")
    field.press("Enter")
    expect(dialog.get_by_text(f"{len(BACKFILL)} partitions", exact=True)).to_be_visible()
    expect(dialog.get_by_text("Backfills all partitions in a single run.")).to_be_visible()  # BackfillPolicy
    page.screenshot(path=shots / "ctr_model_backfill_dialog.png", full_page=True)
    dialog.get_by_role("button", name="Launch backfill").click()

    view = page.locator("a[href^='/runs/b/']").filter(has_text="View")  # the toast: "Created backfill <id>"
    expect(view).to_be_visible()
    backfill = view.get_attribute("href").rstrip("/").rsplit("/", 1)[1]
    view.click()
    expect(page).to_have_url(re.compile(rf"/runs/b/{backfill}/?(\?.*)?$"))
    expect(page.get_by_text("Partition selection", exact=True).locator("..")).to_have_text(
        re.compile(rf"Partition selection\s*{BACKFILL[0]}(\.\.\.|…){BACKFILL[-1]}"))
    status = page.get_by_text("Status", exact=True).locator("..")
    try:  # the page polls; the daemon launches the run and the run trains the three days
        expect(status).to_have_text(re.compile(r"^Status\s*(Succeeded|Completed|Failed)$"), timeout=BACKFILL_TIMEOUT_MS)
    except AssertionError as err:
        page.screenshot(path=shots / "ctr_model_backfill.png", full_page=True)
        raise AssertionError(f"backfill {backfill} not finished: {err}\n{_server_logs(ui)}") from None
    row = page.locator("[class*='VirtualizedTable_row']").filter(has=page.locator("a[href='/assets/ctr_model']"))
    cells = row.locator("[class*='VirtualizedTable_cellBox']")
    expect(cells).to_have_text([re.compile("ctr_model"), "3", "0", "3", "0"])  # targeted, in progress, ok, failed
    page.screenshot(path=shots / "ctr_model_backfill.png", full_page=True)

    # one Dagster run; it succeeded, or only ctr_model's blocking gate check failed it (a day below the floor)
    runs = _graphql(ui["dagster_url"], BACKFILL_RUNS, backfill=backfill)["runsOrError"]["results"]
    assert len(runs) == 1, f"backfill {backfill} launched {runs}, expected one run (single-run policy)"
    (dagster_run,) = runs
    failures = [e for e in _graphql(ui["dagster_url"], STEP_FAILURES, runId=dagster_run["runId"])
                ["logsForRun"]["events"] if e]
    assert dagster_run["status"] in ("SUCCESS", "FAILURE"), f"{dagster_run}\n{_server_logs(ui)}"
    if dagster_run["status"] == "FAILURE":
        assert failures and all(e["stepKey"] == "ctr_model" and "blocking asset check failed" in e["error"]["message"]
                                and "ctr_model: beats_champion" in e["error"]["message"] for e in failures), \
            f"run {dagster_run['runId']} failed otherwise than by its gate: {failures}\n{_server_logs(ui)}"

    # MLflow: one ctr_model run per day, in date order, from that one Dagster run, gated one after another
    new = [r for r in reversed(finished_runs(client, "ctr_model")) if r.info.run_id not in before]  # oldest first
    tags = [r.data.tags for r in new]
    assert [t["dagster.partition"] for t in tags] == BACKFILL, f"new ctr_model MLflow runs: {tags}"
    assert {t["dagster.run_id"] for t in tags} == {dagster_run["runId"]}
    assert [t["gate.candidate"] for t in tags] == [str(latest + i) for i in range(1, len(BACKFILL) + 1)]
    expected = champion
    for t in tags:  # each day is gated against the champion that the day before left
        assert t["gate.champion_before"] == expected, f"{t['dagster.partition']}: {t}"
        assert t["gate.champion_after"] == (t["gate.candidate"] if t["gate.passed"] == "true" else expected), t
        expected = t["gate.champion_after"]
    assert str(client.get_registered_model("ctr_model").aliases.get("champion", "")) == expected
    # only a day below the floor fails the run; a day that kept its champion is no failure
    assert (dagster_run["status"] == "SUCCESS") == all(t["gate.outcome"] != "failed" for t in tags)

    # the asset's Partitions tab, materialised partitions only: the three days, each by the backfill's run
    page.goto(f"{ui['dagster_url']}/assets/ctr_model")
    page.get_by_role("tab", name="Partitions").click()
    expect(page.get_by_text(f"Materialized ({len(BACKFILL)})", exact=True)).to_be_visible()
    for other in ("Failed", "Materializing", "Missing"):
        page.get_by_text(re.compile(rf"^{other} \(\d+\)$")).click()  # untick: show materialised only
    expect(page.get_by_text(f"{len(BACKFILL)} Partitions Selected", exact=True)).to_be_visible()
    for day in BACKFILL:  # the list, then the day's detail: its latest materialisation is the backfill's run
        page.get_by_text(day, exact=True).first.click()
        expect(page).to_have_url(re.compile(rf"[?&]partition={day}(&|$)"))
        expect(page.get_by_role("link", name=dagster_run["runId"][:8], exact=True)).to_be_visible()
    page.screenshot(path=shots / "ctr_model_backfill_partitions.png", full_page=True)
