"""`newsforge report --html`: one self-contained page with the partition's tables and figures, read from a
real local MLflow store."""
import base64
import re

import matplotlib
import pytest
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from newsforge.cli import main
from newsforge.markdown_html import markdown_to_html, table_cells

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DAY, OTHER_DAY = "2019-11-14", "2019-11-13"


def _png(path, colour: str) -> bytes:
    fig, ax = plt.subplots(figsize=(2, 2), dpi=40)
    ax.bar([0, 1], [1, 2], color=colour)
    fig.savefig(path)
    plt.close(fig)
    return path.read_bytes()


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Runs of four assets; returns (tracking uri, {label: (run id, png bytes or None)})."""
    monkeypatch.setenv("NEWSFORGE_PREPARED_DIR", str(tmp_path / "no-prepared-data"))  # no demo ceiling row
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    runs = {}

    def log_run(label, asset, partition, *, metrics=None, texts=None, png=None, finished=True):
        exp = client.get_experiment_by_name(f"newsforge/{asset}")
        exp_id = exp.experiment_id if exp else client.create_experiment(
            f"newsforge/{asset}", artifact_location=(tmp_path / "artifacts" / asset).as_uri())
        run_id = client.create_run(exp_id, tags={"dagster.asset": asset, "dagster.partition": partition}).info.run_id
        for key, value in (metrics or {}).items():
            client.log_metric(run_id, key, value)
        for name, text in (texts or {}).items():
            client.log_text(run_id, text, name)
        data = None
        if png:
            name, colour = png
            folder = tmp_path / "pngs" / label
            folder.mkdir(parents=True)
            data = _png(folder / name, colour)
            client.log_artifact(run_id, str(folder / name))
        if finished:
            client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
        runs[label] = (run_id, data)

    log_run("baseline", "popularity_baseline", DAY, metrics={"auc": 0.61, "mrr": 0.25, "ndcg5": 0.27, "ndcg10": 0.33})
    log_run("news_embeddings", "news_embeddings", "", png=("tsne.png", "tab:blue"))
    log_run("impressions_other_day", "impressions", OTHER_DAY, png=("treemap.png", "tab:green"))
    log_run("impressions", "impressions", DAY, png=("treemap.png", "tab:orange"))
    log_run("impressions_running", "impressions", DAY, png=("treemap.png", "tab:red"), finished=False)
    log_run("ctr_evaluation", "ctr_evaluation", DAY,
            texts={"table2.md": "| model | AUC |\n|:---|---:|\n| DeepFM + PREC | 0.7012 |\n| DCN \\| ids | 0.6543 |\n"})
    return uri, runs


def test_report_html_is_one_self_contained_page(store, tmp_path, capsys):
    uri, runs = store
    out = tmp_path / "out" / "report.html"
    assert main(["report", "--partition", DAY, "--tracking-uri", uri, "--html", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # one file, nothing beside it
    page = out.read_text(encoding="utf-8")

    # every table of the Markdown report, as HTML rows
    assert re.search(r"<tr><td[^>]*>popularity_baseline</td><td[^>]*>0\.6100</td>", page)
    assert re.search(r"<td[^>]*>DeepFM \+ PREC</td><td[^>]*>0\.7012</td>", page)
    assert re.search(r"<td[^>]*>DCN \| ids</td>", page)  # the escaped bar stays inside its cell

    # the figures: the finished run of this partition and the unpartitioned asset's, embedded and captioned
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert sorted(base64.b64decode(i) for i in images) == sorted(
        [runs["impressions"][1], runs["news_embeddings"][1]])
    for label, name in (("impressions", "treemap.png"), ("news_embeddings", "tsne.png")):
        run_id = runs[label][0]
        caption = re.search(rf"<figcaption>(.*?{run_id}.*?)</figcaption>", page)
        assert caption and label in caption[1] and name in caption[1], label
        assert f'/runs/{run_id}"' in page  # linked to the MLflow run
    for label in ("impressions_other_day", "impressions_running"):
        assert runs[label][0] not in page

    # self-contained: no stylesheet, script or image fetched from elsewhere; the only links are MLflow runs
    assert "<style>" in page and "<link" not in page and "<script" not in page
    assert all("/#/experiments/" in href for href in re.findall(r'href="([^"]+)"', page))
    assert not re.search(r'src="(?!data:)', page)


def test_markdown_report_is_unchanged_without_html(store, capsys):
    uri, _ = store
    assert main(["report", "--partition", DAY, "--tracking-uri", uri]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"## Partition {DAY}\n\n| name | AUC |") and "<" not in printed
    assert "| DeepFM + PREC | 0.7012 |" in printed


def test_markdown_to_html_subset():
    page = markdown_to_html("## Scores <b>\n\n| a | b |\n|:---|---:|\n| x \\| y | **1** |\n\nλ = 0.5 `code`\nnext")
    assert "<h2>Scores &lt;b&gt;</h2>" in page
    assert '<th style="text-align:left">a</th><th style="text-align:right">b</th>' in page
    assert '<td style="text-align:left">x | y</td><td style="text-align:right"><strong>1</strong></td>' in page
    assert "<p>λ = 0.5 <code>code</code><br>\nnext</p>" in page
    assert table_cells("| a | b \\| c |") == ["a", "b | c"]
