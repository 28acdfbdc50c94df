"""The explorer without a browser: its numbers are the diagnostics' numbers, and bad input over
HTTP gets a one-line message while the server keeps running."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from conftest import render_word, write_folder_dataset
from htr.data.preprocess import load_image, to_canvas
from htr.diagnostics.__main__ import main as diagnostics_main
from htr.diagnostics.probes import ProbeSet
from htr.diagnostics.relevance import relevance
from htr.diagnostics.shift import shift_sweep
from htr.explore.server import serve_in_thread
from htr.explore.session import MAX_UPLOAD_BYTES, ExploreError, Explorer
from htr.model.module import HTRModule

pytestmark = pytest.mark.usefixtures("one_thread")

BLOCK = "100,4,124,28=0"  # a black block on the empty paper right of the word


def save_checkpoint(path: Path, seed: int, charset: str = "aer") -> Path:
    torch.manual_seed(seed)
    module = HTRModule(charset=charset)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu", devices=1)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("explore")
    image = root / "are.png"
    Image.fromarray(render_word("are")).save(image)
    not_ours = root / "other.ckpt"
    torch.save({"model": {"w": torch.zeros(3)}}, not_ours)  # a checkpoint of another project
    ProbeSet(["p0", "p1"], ["are", "ear"], np.stack([to_canvas(render_word(w, seed=i)) for i, w in enumerate(["are", "ear"])])).save(root / "probes.npz")
    return {
        "a": save_checkpoint(root / "a.ckpt", 0),
        "b": save_checkpoint(root / "b.ckpt", 1),
        "other": not_ours,
        "image": image,
        "probes": root / "probes.npz",
        "data": write_folder_dataset(root / "words", ["are", "ear", "era"], per_word=1),
    }


@pytest.fixture(scope="module")
def explorer(files, tmp_path_factory) -> Explorer:
    ex = Explorer([str(files["a"]), str(files["b"]), str(files["other"])], probes=files["probes"], data_root=files["data"], data_source="folder", export_dir=tmp_path_factory.mktemp("exports"))
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def word(explorer, files) -> str:
    return explorer.upload(files["image"].read_bytes(), "are.png").id


def cli_scores(capsys, ckpt: Path, image: Path, text: str, spec: str | None, out: Path) -> list[tuple[str, str, str]]:
    """(label, score, reading) rows printed by ``python -m htr.diagnostics edit`` (in process)."""
    capsys.readouterr()
    assert diagnostics_main(["edit", str(ckpt), str(image), "--text", text, *(["--set", spec] if spec else []), "--out", str(out)]) == 0
    rows = capsys.readouterr().out.splitlines()[1:-1]  # header ... "wrote FIG"
    return [tuple((r.split() + [""])[:3]) for r in rows]


def test_scores_equal_the_edit_cli(explorer, word, files, capsys, tmp_path) -> None:
    res = explorer.score(word, "are", [BLOCK], 0)
    assert res["spec"] == BLOCK and len(res["models"]) == 3
    for m, ckpt in zip(res["models"][:2], (files["a"], files["b"])):
        (_, s0, r0), (label, s1, r1) = cli_scores(capsys, ckpt, files["image"], "are", BLOCK, tmp_path / "e.png")
        assert label == BLOCK
        assert (m["original"]["score_text"], m["edited"]["score_text"]) == (s0, s1)
        assert (m["original"]["reading"], m["edited"]["reading"]) == (r0, r1)
        assert m["edited"]["score"] != m["original"]["score"]  # the block does change the score
    assert "not a Lightning checkpoint of this project" in res["models"][2]["error"]  # the foreign file is reported, the others work


def test_edited_canvas_is_the_edit_applied_to_the_preprocessed_word(explorer, word, files) -> None:
    import base64

    res = explorer.score(word, "are", ["0,0,2,2=10", "dot:60,16,3=128"], 0)
    canvas = np.frombuffer(base64.b64decode(res["canvas"]), np.uint8).reshape(32, 128)
    expected = to_canvas(load_image(files["image"]))
    expected[0:2, 0:2] = 10
    import cv2

    cv2.circle(expected, (60, 16), 3, 128, thickness=-1)
    assert np.array_equal(canvas, expected)


def test_frames_collapse_to_the_reading(explorer, word) -> None:
    for shift in (0, 5):
        for m in explorer.score(word, "are", [BLOCK], shift)["models"][:2]:
            assert len(m["frames"]) == 32
            collapsed, prev = [], None
            for c in m["frames"]:  # CTC best path: merge repeats, drop blanks ('')
                if c != prev and c:
                    collapsed.append(c)
                prev = c
            assert "".join(collapsed) == m["edited"]["reading"]


def test_shift_is_the_shift_sweep(explorer, word, files) -> None:
    ck = explorer.checkpoints[0]
    sweep = shift_sweep(ck.scorer, to_canvas(load_image(files["image"])), "are", max_shift=8)
    for s in (0, 3, 8):
        m = explorer.score(word, "are", [], s)["models"][0]
        assert m["original"]["score"] == pytest.approx(sweep.scores[s], rel=1e-4)
        assert m["original"]["reading"] == sweep.texts[s]


def test_relevance_job_equals_relevance(explorer, word, files) -> None:
    ck = explorer.checkpoints[0]
    job = explorer.relevance(word, "are", [BLOCK], 2, window=8, stride=8)
    assert job.wait(120)
    st = job.status()
    assert st["done"] and st["progress"] == 1.0 and st["error"] is None
    assert "not a Lightning checkpoint of this project" in st["maps"][2]["error"]
    _, shifted, ed = explorer.render(word, [BLOCK], 2)
    canvas = ed.apply(shifted)
    expected = relevance(ck.scorer, canvas, "are", 8, 8)
    np.testing.assert_allclose(np.reshape(st["maps"][0]["map"], (32, 128)), expected, atol=1e-4)
    partial = job.partial_maps()  # what the page polls while the job runs: here every chunk is done
    np.testing.assert_allclose(np.reshape(partial[0], (32, 128)).astype(float), expected, atol=1e-4)
    assert partial[2] is None


def test_partial_map_covers_only_the_chunks_done(explorer, word) -> None:
    job = explorer.relevance(word, "are", [], 0, window=16, stride=16)
    assert job.wait(120)
    first = job._finished[0][0][0]  # drop all but one chunk, as if the others were still running
    job._finished = {0: job._finished[0][:1]}
    partial = np.array(job.partial_maps()[0], dtype=object).reshape(32, 128)
    x0, x1 = first.windows[:, 2].min(), first.windows[:, 3].max()
    assert all(v is not None for v in partial[:, x0:x1].ravel()) and all(v is None for v in np.delete(partial, np.s_[x0:x1], axis=1).ravel())


def test_split_chunks_keeps_whole_columns_in_order() -> None:
    from htr.diagnostics.relevance import make_perturbations
    from htr.explore.session import split_chunks

    pert = make_perturbations(to_canvas(render_word("are")), 4, 2)
    chunks = split_chunks(pert, 5)
    assert len(chunks) == 5
    assert np.array_equal(np.concatenate([c.windows for c in chunks]), pert.windows)
    columns = [set(c.windows[:, 2].tolist()) for c in chunks]
    assert sum(len(c) for c in columns) == len(set().union(*columns))  # no column in two chunks


def test_cancelled_relevance_job_stops_without_maps(explorer, word) -> None:
    job = explorer.relevance(word, "are", [], 0, window=1, stride=1)
    job.cancel()
    assert job.wait(120)
    st = job.status()
    assert st["cancelled"] and st["maps"] is None and st["progress"] < 1.0


@pytest.mark.parametrize("shift", [0, 6])
def test_export_reproduces_on_the_cli(explorer, word, files, capsys, tmp_path, shift) -> None:
    spec = [BLOCK, "px:3,3,4,4=200"]
    shown = explorer.score(word, "are", spec, shift)["models"][0]["edited"]["score_text"]
    out = explorer.export(word, "are", spec, shift)
    assert out["reproduced"] and Path(out["image"]).is_file() and Path(out["edited"]).is_file()
    cmd = shlex.split(out["commands"][0])
    assert cmd[:4] == ["python", "-m", "htr.diagnostics", "edit"] and len(out["commands"]) == 2
    capsys.readouterr()
    assert diagnostics_main(cmd[3:-2] + ["--out", str(tmp_path / "fig.png")]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[1] == shown


def test_sources_probe_split_and_errors(explorer) -> None:
    info = explorer.source_info(explorer.source("probe:1"))
    assert info["text"] == "ear" and info["truth"] == "ear"
    assert explorer.split_names()["splits"] == {"test": 3, "train": 3, "val": 3}
    assert explorer.source_info(explorer.source("split:val:2"))["truth"] == "era"
    for sid, msg in [("probe:9", "probe 9 does not exist"), ("split:nope:0", "no split 'nope'"), ("split:val:7", "has words 0..2"), ("upload:99", "unknown word")]:
        with pytest.raises(ExploreError, match=msg):
            explorer.source(sid)


@pytest.mark.parametrize(
    "text,edits,shift,msg",
    [
        ("", [], 0, "it is empty"),
        ("are", ["1,2,3=0"], 0, "bad edit"),
        ("are", [], 500, "shift must be an integer in 0.."),
        ("are", [], -1, "shift must be"),
        ("are", "10,0,12,2=0", 0, "edits must be a list"),
        ("x" * 65, [], 0, "text too long"),
    ],
)
def test_bad_requests_raise_one_line(explorer, word, text, edits, shift, msg) -> None:
    with pytest.raises(ExploreError, match=msg) as err:
        explorer.score(word, text, edits, shift)
    assert "\n" not in str(err.value)


# ---- over HTTP ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(explorer):
    srv = serve_in_thread(explorer)
    yield srv
    srv.shutdown()
    srv.server_close()


def call(server, method: str, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(server.url.rstrip("/") + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def png_bytes(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (w, h), 255).save(buf, format="PNG")  # compresses to a few KB however large
    return buf.getvalue()


def test_http_round_trip(server, word) -> None:
    assert server.server_address[0] == "127.0.0.1"
    status, state = call(server, "GET", "/api/state")
    assert status == 200 and [c["error"] is None for c in state["checkpoints"]] == [True, True, False]
    status, res = call(server, "POST", "/api/score", {"source": word, "text": "are", "edits": [BLOCK], "shift": 1})
    assert status == 200 and res["models"][0]["edited"]["score_text"]
    status, job = call(server, "POST", "/api/relevance", {"source": word, "text": "are", "edits": [], "shift": 0, "window": 16, "stride": 16})
    assert status == 200
    server.job(job["job"]).wait(120)
    status, st = call(server, "GET", f"/api/job/{job['job']}")
    assert st["done"] and len(st["maps"][0]["map"]) == 32 * 128
    with urllib.request.urlopen(server.url, timeout=30) as resp:
        assert b"<canvas id=\"editor\"" in resp.read()


@pytest.mark.parametrize(
    "method,path,body,raw,status,msg",
    [
        ("POST", "/api/upload?name=notes.txt", None, b"just some text, not an image", 400, "notes.txt: not an image"),
        ("POST", "/api/upload?name=big.png", None, png_bytes(9000, 5000), 400, "image too large (9000 x 5000"),
        ("POST", "/api/upload?name=huge.png", None, b"\0" * (MAX_UPLOAD_BYTES + 1), 413, "too large"),
        ("POST", "/api/upload?name=empty.png", None, b"", 400, "empty file"),
        ("POST", "/api/score", None, b"{not json", 400, "not JSON"),
        ("POST", "/api/score", {"source": "upload:1", "text": "are", "edits": ["line:1,2=0"], "shift": 0}, None, 400, "bad edit"),
        ("POST", "/api/relevance", {"source": "upload:1", "text": "are", "window": 0}, None, 400, "window must be an integer in 1..32"),
        ("GET", "/api/job/nope", None, None, 404, "no relevance job"),
        ("GET", "/etc/passwd", None, None, 404, "no such page"),
    ],
)
def test_http_bad_input_gets_a_message_and_the_server_keeps_running(server, word, method, path, body, raw, status, msg) -> None:
    got, res = call(server, method, path, body, raw)
    assert got == status and msg in res["error"] and "\n" not in res["error"]
    assert call(server, "GET", "/api/state")[0] == 200


def test_http_text_outside_charset_is_reported_per_checkpoint(server, word) -> None:
    status, res = call(server, "POST", "/api/score", {"source": word, "text": "arz", "edits": [], "shift": 0})
    assert status == 200
    assert ["outside the model's charset: 'z'" in m["error"] for m in res["models"][:2]] == [True, True]


def test_http_internal_error_is_500_and_the_server_keeps_running(server, word, monkeypatch) -> None:
    def boom(*_a, **_k):
        raise RuntimeError("simulated")

    monkeypatch.setattr(server.explorer, "score", boom)
    got, res = call(server, "POST", "/api/score", {"source": word, "text": "are"})
    assert got == 500 and res["error"] == "internal error: RuntimeError: simulated"
    monkeypatch.undo()
    assert call(server, "POST", "/api/score", {"source": word, "text": "are"})[0] == 200


@pytest.mark.slow
def test_entry_point_binds_localhost_and_prints_its_url(files, tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "htr.explore", str(files["a"]), str(files["other"]), "--port", "0", "--probes", str(files["probes"]), "--image", str(files["image"])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("a: loaded") and "NOT loaded: " in lines[1] and "not a Lightning checkpoint of this project" in lines[1]
        url = re.match(r"explorer: (http://127\.0\.0\.1:\d+/)\?source=upload:1 ", lines[2]).group(1)
        with urllib.request.urlopen(url + "api/state", timeout=30) as resp:
            assert json.loads(resp.read())["checkpoints"][0]["name"] == "a"
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.slow
def test_entry_point_bad_arguments_are_one_line(files, tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = subprocess.run([sys.executable, "-m", "htr.explore", str(files["a"]), "--image", str(tmp_path / "missing.png")], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0 and "error: " in run.stderr
