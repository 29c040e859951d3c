"""Sharded, resumable batch upscaling: sharding, the run manifest, batching, and torchrun runs."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from litesr import ArchSpec, SRModel
from litesr.archs import SCNet
from litesr.batch import Job, UpscaleOptions, plan_jobs, run_batch
from litesr.checkpoints import save_safetensors
from litesr.cli import main
from litesr.manifest import MANIFEST_FOLDER, RunManifest
from litesr.sharding import join_ranks, shard

SPEC = dict(num_feat=8, num_block=1, upscale=2, use_pixelshuffle=True)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    return save_safetensors(tmp_path_factory.mktemp("w") / "tiny_x2.safetensors", SCNet(**SPEC), ArchSpec("scnet", SPEC))


def _images(folder: Path, count: int = 12, bad: bool = True, size: int = 16) -> Path:
    """``count`` small PNGs of two sizes (so some batch together and some don't), one of them broken."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        side = size if index % 3 else size + 4
        Image.fromarray(rng.integers(0, 255, (side, side + 2, 3), dtype=np.uint8)).save(folder / f"{index:02d}.png")
    if bad:
        (folder / "05.png").write_bytes(b"not a png")
    return folder


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob("*.png")}


def _done_lines(folder: Path) -> list[str]:
    lines = [json.loads(line) for path in (folder / MANIFEST_FOLDER).glob("*.jsonl")
             for line in path.read_text().splitlines() if line]
    return [line["output"] for line in lines if line["state"] == "done"]


# --------------------------------------------------------------------------- pieces


def test_shards_are_disjoint_complete_and_deterministic():
    items = list(range(11))
    shares = shard(items, 3)
    assert shares == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert sorted(sum(shares, [])) == items and shard(items, 3) == shares and shard(items, 1) == [items]


def test_without_torchrun_the_ranks_are_this_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ranks = join_ranks()
    assert (ranks.rank, ranks.world_size, ranks.is_main) == (0, 1, True)
    assert ranks.from_main(lambda: ["plan"]) == "plan" and ranks.all_gather(3) == [3]
    assert ranks.count_done() == 1 and ranks.count_done(2) == 3 and ranks.cpu_threads() is None


def test_batched_forward_equals_one_by_one_and_keeps_order(tmp_path):
    torch.manual_seed(0)
    model = SRModel(ArchSpec("scnet", SPEC).build(), ArchSpec("scnet", SPEC)).deploy()
    source = _images(tmp_path / "in")
    inputs = [(path, Path(path.name)) for path in sorted(source.glob("*.png"))]
    results = {}
    for batch, workers in ((1, 0), (4, 2)):
        jobs = plan_jobs(inputs, tmp_path / f"out{batch}", UpscaleOptions(), "x2")
        done = []
        report = run_batch(model, jobs, UpscaleOptions(), on_done=done.append, batch_size=batch, io_workers=workers)
        assert done == jobs and len(report.written) == 11 and [s.name for s, _ in report.failed] == ["05.png"]
        results[batch] = _outputs(tmp_path / f"out{batch}")
    assert results[1] == results[4] and len(results[1]) == 11


def test_manifest_vouches_only_for_unchanged_outputs_of_the_same_settings(tmp_path):
    source = _images(tmp_path / "in", count=3, bad=False)
    out = tmp_path / "out"
    out.mkdir()
    jobs = [Job(source / f"{i:02d}.png", out / f"{i:02d}_x2.png") for i in range(3)]
    journal = RunManifest(out, "settings-a").journal("run1")
    for job in jobs:
        journal.started(job)
        job.target.write_bytes(b"result")
        journal.done(job)
    journal.close()
    assert RunManifest(out, "settings-a").finished(jobs) == set(jobs)
    assert RunManifest(out, "settings-b").finished(jobs) == set()  # another model or precision: redone
    jobs[0].target.write_bytes(b"edited by hand")  # the output changed since
    os.utime(jobs[1].source, ns=(1, 1))  # the input changed since
    jobs[2].target.unlink()  # the output is gone
    assert RunManifest(out, "settings-a").finished(jobs) == set()


def test_manifest_adopts_an_output_published_before_its_done_line_and_survives_a_torn_line(tmp_path):
    source = _images(tmp_path / "in", count=2, bad=False)
    out = tmp_path / "out"
    jobs = [Job(source / f"{i:02d}.png", out / f"{i:02d}_x2.png") for i in range(2)]
    journal = RunManifest(out, "s").journal("killed")
    journal.started(jobs[0])
    journal.started(jobs[1])
    jobs[0].target.write_bytes(b"published, then the process was killed")
    journal.close()
    manifest_file = out / MANIFEST_FOLDER / "killed.jsonl"
    with open(manifest_file, "a") as handle:
        handle.write('{"state": "done", "inp')  # killed mid-line
    assert RunManifest(out, "s").finished(jobs) == {jobs[0]}
    journal = RunManifest(out, "s").journal("killed")
    journal.started(jobs[1])
    jobs[1].target.write_bytes(b"x")
    journal.done(jobs[1])
    journal.close()
    assert RunManifest(out, "s").finished(jobs) == set(jobs)  # the append started on a fresh line


def test_rerun_resumes_only_what_is_left(weights, tmp_path, capsys):
    source = _images(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["upscale", "-w", str(weights), "-q", str(source), "-o", str(out)]) == 1
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    (out / "00_x2.png").unlink()
    code = main(["upscale", "-w", str(weights), str(source), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "upscaled 1 file(s), 10 already done (run manifest), 1 failed" in err, err
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if p.name != "00_x2.png"} == \
        {name: mtime for name, mtime in first.items() if name != "00_x2.png"}


# --------------------------------------------------------------------------- torchrun


def _torchrun(processes: int, *args: object) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "litesr", "upscale", *map(str, args)]


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_two_processes_write_the_same_bytes_as_one_each_once(weights, tmp_path):
    source = _images(tmp_path / "in")
    single = subprocess.run([sys.executable, "-m", "litesr", "upscale", "-w", weights, source, "-o", tmp_path / "one",
                             "--threads", "1"], capture_output=True, text=True, timeout=120)
    sharded = subprocess.run(_torchrun(2, "-w", weights, source, "-o", tmp_path / "two"),
                             capture_output=True, text=True, timeout=180, env=_environment())
    assert single.returncode == 1 and sharded.returncode != 0, sharded.stderr
    assert "Traceback" not in single.stderr
    assert sharded.stderr.count("05.png: ") == 1  # the bad file, reported once, by rank 0
    assert sharded.stderr.count("upscaled 11 file(s), 1 failed") == 1, sharded.stderr
    assert "on 2 processes" in sharded.stderr
    assert _outputs(tmp_path / "two") == _outputs(tmp_path / "one") and len(_outputs(tmp_path / "one")) == 11
    assert sorted(_done_lines(tmp_path / "two")) == sorted(_outputs(tmp_path / "two"))  # each written once


def _rank_pid(parent: int, rank: int) -> int | None:
    """The pid of torchrun's worker of ``rank`` (read from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            if f"RANK={rank}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except (OSError, IndexError, ValueError):
            continue
    return None


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the rank's process in /proc")
def test_a_killed_rank_is_resumed_by_rerunning_with_nothing_written_twice(weights, tmp_path):
    source = _images(tmp_path / "in", count=40, bad=False, size=96)
    out = tmp_path / "out"
    command = _torchrun(2, "-w", weights, source, "-o", out, "-q", "--batch", "1", "--io-workers", "0")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_environment())
    try:
        deadline = time.monotonic() + 150
        while len(list(out.glob("*.png"))) < 4:
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
            time.sleep(0.02)
        victim = _rank_pid(process.pid, 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0
    first = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.png")}
    assert 4 <= len(first) < 40
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=180, env=_environment())
    assert rerun.returncode == 0, rerun.stderr
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.png")}
    assert len(after) == 40 and all(after[name] == identity for name, identity in first.items())
    done = _done_lines(out)  # an output published just before its rank died has only its "started" line
    assert len(done) == len(set(done)) and set(done) <= set(after) and len(done) >= len(after) - 2
    # a SIGKILLed write cannot remove its temp file: litesr.imaging.atomic removes it once stale
    assert all(Image.open(out / name).size for name in after)
