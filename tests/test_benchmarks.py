"""The benchmark scripts run end to end at tiny sizes, so they cannot rot."""

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def run(script: str, tmp_path: Path, *args: str) -> tuple[dict, list[str]]:
    """The results the script wrote as JSON, and the lines of the table it printed."""
    out = tmp_path / "results.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(REPO / "benchmarks" / script), *args, "--json", str(out)]
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("| ")  # the table
    return json.loads(out.read_text())["results"], result.stdout.splitlines()


def measured(value: float) -> bool:
    """A rate or size that was measured: finite and positive (its size is the machine's)."""
    return 0 < value < math.inf


def assert_gan_record(record: dict) -> None:
    """One run of one case as gan_throughput.py writes it; a process that imported torch and
    Lightning holds more than 100 MiB."""
    assert set(record) == {"it_per_s", "peak_rss_mb"}
    assert measured(record["it_per_s"]) and record["peak_rss_mb"] > 100


@pytest.mark.slow  # four processes; the fast suite runs the script through the next test
def test_gan_benchmark_measures_all_three_cases(mnist_dir, tmp_path):
    results, table = run(
        "gan_throughput.py",
        tmp_path,
        f"--data-dir={mnist_dir}",
        "--variants",
        "wgan_gp",  # the variant with the most code paths: gradient penalty, n_critic
        "--iterations=3",
        "--warmup=1",
        "--repeats=1",
        "--threads=1",
    )
    assert list(results) == ["wgan_gp"]
    assert list(results["wgan_gp"]) == ["reference", "lightning", "fast_loop"]  # one run each
    (reference,), (lightning,), (fast,) = results["wgan_gp"].values()
    for record in (reference, lightning, fast):
        assert_gan_record(record)
    # The printed row holds the measured figures and the ratios computed from them.
    speeds = [record["it_per_s"] for record in (reference, lightning, fast)]
    ratios = [
        lightning["it_per_s"] / reference["it_per_s"],
        lightning["it_per_s"] / fast["it_per_s"],
    ]
    sizes = [record["peak_rss_mb"] for record in (reference, lightning, fast)]
    assert table[2:] == [
        "| wgan_gp | {:.1f} | {:.1f} | {:.1f} | ".format(*speeds)
        + "{:.2f}× | {:.2f}× | ".format(*ratios)
        + "{:.0f} / {:.0f} / {:.0f} |".format(*sizes)
    ]


def agent_benchmark(tmp_path: Path, *cases: str) -> tuple[dict, list[str]]:
    options = ["--iterations=3", "--warmup=1", "--prefill=300", "--batch-size=16"]
    options += ["--collect-steps=20", "--repeats=1", "--threads=1", "--cases", *cases]
    return run("agent_throughput.py", tmp_path, *options)


def assert_agent_records(results: dict, cases: list[str]) -> None:
    """One repeat's records as agent_throughput.py writes them: the reference, ``cases``, then
    collection (environment counts as JSON's string keys), each with exactly its fields."""
    assert list(results) == ["reference", *cases, "collection"]
    for case in ("reference", *cases):
        (record,) = results[case]
        assert set(record) == {"steps_per_s", "peak_rss_mb"}
        assert measured(record["steps_per_s"]) and record["peak_rss_mb"] > 100
    (record,) = results["collection"]
    assert set(record) == {"collection", "peak_rss_mb"} and record["peak_rss_mb"] > 100
    assert list(record["collection"]) == ["1", "8", "64"]
    for figures in record["collection"].values():
        assert set(figures) == {"raw", "collector"} and all(map(measured, figures.values()))


def agent_table(results: dict) -> list[str]:
    """The table agent_throughput.tables must print for one repeat's records: every figure as
    measured, every ratio computed from the figures."""
    reference = results["reference"][0]["steps_per_s"]
    training = [
        f"| {case} | {r['steps_per_s']:.1f} | {r['steps_per_s'] / reference:.2f}× "
        f"| {r['peak_rss_mb']:.0f} |"
        for case, (r,) in results.items()
        if case != "collection"
    ]
    collection = [
        f"| {n} | {f['raw']:,.0f} | {f['collector']:,.0f} | {f['collector'] / f['raw']:.2f}× |"
        for n, f in results["collection"][0]["collection"].items()
    ]
    head = "| case | env steps/s (training) | vs reference | peak RSS MB |"
    head_2 = "| environments | raw gymnasium transitions/s | collector transitions/s | ratio |"
    rule = "| --- | --- | --- | --- |"
    return [head, rule, *training, "", head_2, rule, *collection]


@pytest.mark.slow  # three processes; the fast suite runs the same cases in its own process next
def test_agent_benchmark_measures_training_and_collection(tmp_path):
    results, table = agent_benchmark(tmp_path, "lightning")
    assert_agent_records(results, ["lightning"])
    assert table == agent_table(results)


class TickingClock:
    """Stands in for a benchmark's ``time`` module: each ``perf_counter()`` reading is ``tick``
    seconds after the one before, so a rate comes out as exactly what the benchmark counted
    over the readings it took."""

    def __init__(self, tick: float) -> None:
        self.tick, self.now = tick, 0.0

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


def test_agent_benchmark_cases_measure_and_tabulate(tmp_path, monkeypatch):
    # Each case's code, run here rather than in a process of its own: importing torch and
    # Lightning three more times would be most of the test's time.
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    monkeypatch.chdir(tmp_path)
    import agent_throughput
    import torch

    import duet.callbacks

    collectors = []  # every GymCollector the cases build, to compare what each one stored

    class KeptGymCollector(duet.callbacks.GymCollector):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            collectors.append(self)

    monkeypatch.setattr(duet.callbacks, "GymCollector", KeptGymCollector)
    options = dict(iterations=3, warmup=1, prefill=300, batch_size=16, collect_steps=20)
    options.update(threads=torch.get_num_threads(), accelerator="cpu")
    # A different tick per case, so that a ratio taken the wrong way round shows.
    ticks = {"reference": 0.25, "lightning": 0.5, "collection": 0.5}
    results = {}
    for case, tick in ticks.items():
        monkeypatch.setattr(agent_throughput, "time", TickingClock(tick))
        results[case] = [agent_throughput.run_case(SimpleNamespace(case=case, **options))]
    collection = results["collection"][0]["collection"]
    results["collection"][0]["collection"] = {str(n): f for n, f in collection.items()}  # as JSON
    assert_agent_records(results, ["lightning"])
    # Training: the 3 iterations after the warm-up over the two readings around them.
    assert results["reference"][0]["steps_per_s"] == 3 / 0.25
    assert results["lightning"][0]["steps_per_s"] == 3 / 0.5
    # Collection: 20 vector steps in 10 chunks of 2, each chunk timed once per side (10 ticks);
    # raw counts every environment's step, the collector what it stored (no autoreset steps).
    built = collectors[-3:]
    assert [collector.num_envs for collector in built] == [1, 8, 64]
    for collector in built:
        num_envs, figures = collector.num_envs, results["collection"][0]["collection"]
        assert figures[str(num_envs)] == {
            "raw": num_envs * 20 / (10 * 0.5),
            "collector": collector.env_steps / (10 * 0.5),
        }
        assert 0 < collector.env_steps <= num_envs * 20
    # One process: its peak memory only grows from case to case.
    sizes = [results[case][0]["peak_rss_mb"] for case in ticks]
    assert sizes == sorted(sizes)
    table = agent_throughput.tables(results).splitlines()
    assert table == agent_table(results)
    assert table[2:4] == [
        f"| reference | 12.0 | 1.00× | {sizes[0]:.0f} |",
        f"| lightning | 6.0 | 0.50× | {sizes[1]:.0f} |",
    ]
    assert [row.split(" | ")[:2] for row in table[-3:]] == [
        ["| 1", "4"],
        ["| 8", "32"],
        ["| 64", "256"],
    ]


@pytest.mark.slow  # torch.compile's first compilation
def test_agent_benchmark_measures_the_compiled_step(tmp_path):
    results, table = agent_benchmark(tmp_path, "lightning_compiled")
    assert_agent_records(results, ["lightning_compiled"])
    assert table == agent_table(results)


@pytest.mark.slow  # a process of its own for a profile
def test_agent_profile_names_the_training_step(tmp_path):
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "profile_agent.py"),
        "--iterations=3",
        "--prefill=300",
        "--threads=1",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "actenv.py" in result.stdout and "(training_step)" in result.stdout


def test_lightning_cases_draw_the_progress_bar_as_the_experiment_configs_do(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from common import configured_progress_bar

    assert configured_progress_bar("gan").refresh_rate == 10
    assert configured_progress_bar("actenv_cartpole").refresh_rate == 50
    assert configured_progress_bar("dcgan").refresh_rate == 1  # Lightning's default


def test_gan_benchmark_runs_a_chosen_case_in_a_chosen_precision(mnist_dir, tmp_path):
    results, table = run(
        "gan_throughput.py",
        tmp_path,
        f"--data-dir={mnist_dir}",
        "--variants=gan",
        "--cases=lightning",
        "--precision=bf16-mixed",
        "--iterations=2",
        "--warmup=1",
        "--repeats=1",
        "--threads=1",
    )
    assert list(results) == ["gan"] and list(results["gan"]) == ["lightning"]
    (record,) = results["gan"]["lightning"]
    assert_gan_record(record)
    # The row shows the one measured case; the cases not run, and the ratios needing them, NaN.
    speed, size = record["it_per_s"], record["peak_rss_mb"]
    assert table[2:] == [
        f"| gan | nan | {speed:.1f} | nan | nan× | nan× | nan / {size:.0f} / nan |"
    ]


@pytest.mark.slow  # a process of its own for a micro-benchmark
def test_finite_check_benchmark_times_both_checks(tmp_path):
    command = [sys.executable, str(REPO / "benchmarks" / "finite_check.py"), "--iterations=50"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["processes"], report["device"]) == (1, "cpu") and len(report) == 3
    assert list(report["us"]) == ["every_iteration", "guard"]
    assert all(map(measured, report["us"].values()))


def test_gan_parity_trains_each_case_and_scores_its_samples(
    mnist_dir, tmp_path, monkeypatch, capsys
):
    # One process for the cases (their subprocess wrapper is the throughput benchmark's).
    from tests.conftest import tiny_mnist, tiny_trainer

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import gan_parity

    from duet.lightning_modules import MNISTClassifier

    trainer = tiny_trainer(tmp_path / "classifier", max_steps=2)
    trainer.fit(MNISTClassifier(feature_size=16), datamodule=tiny_mnist(mnist_dir))
    trainer.save_checkpoint(tmp_path / "classifier.ckpt")
    common = [f"--data-dir={mnist_dir}", f"--classifier={tmp_path / 'classifier.ckpt'}"]
    common += ["--variant=gan", "--seed=0", "--iterations=2", "--num=30", "--threads=1"]
    figures = {}
    for case in ("plain", "duet", "duet_all"):
        assert gan_parity.main([*common, f"--case={case}"]) == 0
        figures[case] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert_parity_figures(figures[case], num=30)
    wgan_gp = [arg.replace("=gan", "=wgan_gp") for arg in common]  # its critic steps, its G steps
    assert gan_parity.main([*wgan_gp, "--case=plain"]) == 0
    assert_parity_figures(json.loads(capsys.readouterr().out.strip().splitlines()[-1]), num=30)
    # Two seeds of one case share a row, with their median; cases in the order plain, duet.
    rows = [{"variant": "gan", "case": "duet", "seed": 0, **figures["duet"]}]
    rows += [{"variant": "gan", "case": "duet", "seed": 1, **figures["duet_all"]}]
    rows += [{"variant": "gan", "case": "plain", "seed": 0, **figures["plain"]}]
    plain, first, second = figures["plain"], figures["duet"], figures["duet_all"]
    assert gan_parity.table(rows).splitlines()[2:] == [
        f"| gan | plain | {plain['fid']:.1f} | {plain['fid']:.1f} | {share(plain)} |",
        f"| gan | duet | {first['fid']:.1f}, {second['fid']:.1f} | "
        f"{(first['fid'] + second['fid']) / 2:.1f} | {share(first)}, {share(second)} |",
    ]


def assert_parity_figures(figures: dict, num: int) -> None:
    """gan_parity.py's figures of ``num`` samples: the digit counts and the shares and classes
    taken from them agree; FID is finite and positive (its size depends on the training)."""
    assert set(figures) == {
        "fid",
        "rarest_share",
        "rarest_class",
        "commonest_share",
        "class_counts",
    }
    counts = figures["class_counts"]
    assert len(counts) == 10 and sum(counts) == num
    assert figures["rarest_class"] == counts.index(min(counts))  # the first, on a tie
    assert figures["rarest_share"] == min(counts) / num
    assert figures["commonest_share"] == max(counts) / num
    assert measured(figures["fid"])


def share(figures: dict) -> str:
    """The rarest digit's share as gan_parity's table prints it, e.g. ``3.3% (7)``."""
    return f"{figures['rarest_share']:.1%} ({figures['rarest_class']})"


def test_agent_against_sb3_evaluates_both_learners_on_the_same_steps(monkeypatch, tmp_path):
    pytest.importorskip("stable_baselines3")
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    monkeypatch.chdir(tmp_path)
    import agent_vs_sb3

    options = ["--env-steps=1100", "--eval-episodes=2", "--final-episodes=3", "--threads=1"]
    results = {
        learner: agent_vs_sb3.run_case(
            agent_vs_sb3.parse_args([*options, f"--case={learner}", "--seed=0"])
        )
        for learner in agent_vs_sb3.LEARNERS
    }
    # SB3 steps one environment at a time; duet's solved config prefills 1,000 steps first.
    assert [point[0] for point in results["sb3"]["curve"]] == [500, 1000]
    assert [point[0] for point in results["duet"]["curve"]] == [1001]
    for result in results.values():
        assert set(result) == {
            "curve",
            "solved_env_steps",
            "solved_seconds",
            "train_seconds",
            "final_mean",
            "final_std",
        }
        assert result["train_seconds"] > max(point[1] for point in result["curve"]) > 0
        assert result["final_mean"] >= 8  # CartPole's shortest greedy episodes last 8 steps
        # "Solved" is the first evaluation at or above the threshold (475), if any.
        solved = next(((steps, s) for steps, s, mean in result["curve"] if mean >= 475), None)
        assert (result["solved_env_steps"], result["solved_seconds"]) == (solved or (None, None))


@pytest.mark.slow  # compiles the solved config's iteration
def test_agent_against_sb3_trains_duet_compiled_when_asked(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    monkeypatch.chdir(tmp_path)
    import agent_vs_sb3

    options = ["--env-steps=1010", "--eval-every=2000", "--case=duet", "--seed=0"]
    assert agent_vs_sb3.parse_args(options).compile == "false"
    args = agent_vs_sb3.parse_args([*options, "--compile"])
    clock = agent_vs_sb3.EvaluationClock(every=args.eval_every, episodes=1)
    model = agent_vs_sb3.train_duet(args, clock)
    assert model.hparams.compile and model.compiled_iteration.ready(model.trainer.optimizers)


def test_evaluation_clock_leaves_the_evaluations_out_of_the_training_time(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import agent_vs_sb3

    import duet.callbacks.greedy_rollout as rollout

    times = iter([10.0, 12.0, 15.0, 17.0, 21.0, 22.0])  # start, then 2 evaluations: begin, end
    monkeypatch.setattr(rollout, "greedy_returns", lambda *args: np.array([490.0, 470.0]))
    clock = agent_vs_sb3.EvaluationClock(every=500, episodes=2, now=lambda: next(times))
    clock.start()  # 10
    clock.after_step(499, policy=None)  # not yet
    clock.after_step(501, policy=None)  # evaluates from 12 to 15: 2 s of training
    clock.after_step(999, policy=None)
    clock.after_step(1000, policy=None)  # from 17 to 21: 7 - 3 = 4 s of training
    assert clock.curve == [(501, 2.0, 480.0), (1000, 4.0, 480.0)]
    assert clock.training_seconds() == 22.0 - 10.0 - 7.0


def test_agent_against_sb3_table_counts_an_unsolved_run_as_slowest(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import agent_vs_sb3

    assert agent_vs_sb3.median_or_none([None, 3000, 1500]) == 3000
    assert agent_vs_sb3.median_or_none([None, None, 1500]) is None

    def run(steps, seconds):
        return {"solved_env_steps": steps, "solved_seconds": seconds, "final_mean": 500.0}

    results = {
        "duet": [run(1500, 3.0), run(None, None), run(2000, 5.0)],
        "sb3": [run(30000, 60.0), run(40000, 90.0), run(None, None)],
    }
    for runs in results.values():
        for r in runs:
            r |= {"final_std": 0.0, "train_seconds": 100.0}
    args = agent_vs_sb3.parse_args(["--seeds", "0", "1", "2"])
    text = agent_vs_sb3.table(results, args)
    assert "| duet | 1 | never | never | 500.0 ± 0.0 | 100.0 |" in text
    assert "| duet | median | 2,000 | 5.0 |" in text and "| sb3 | median | 40,000 | 90.0 |" in text
    assert "duet/SB3 median environment steps to ≥ 475: 0.050" in text
    assert "duet/SB3 median seconds to ≥ 475: 0.056" in text
    only_duet = agent_vs_sb3.table({"duet": results["duet"]}, args)
    assert "| duet | median | 2,000 | 5.0 |" in only_duet
    assert "sb3" not in only_duet and "duet/SB3" not in only_duet
    for r in results["duet"]:
        r["curve"] = [(1000, 1.0, 9.0), (1500, 2.0, 480.0)]
    args.plot = tmp_path / "duet.png"
    agent_vs_sb3.plot({"duet": results["duet"]}, args)  # one learner's curves
    assert args.plot.stat().st_size > 1000


def test_agent_against_sb3_passes_duet_settings_to_its_config(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    monkeypatch.chdir(tmp_path)
    import agent_vs_sb3

    for bad in ("batch_size", "--data.init_args.batch_size=64", "=64"):
        with pytest.raises(SystemExit):
            agent_vs_sb3.parse_args([f"--duet-set={bad}"])
        assert f"{bad!r} is not KEY=VALUE" in capsys.readouterr().err
    settings = ["data.init_args.batch_size=32", "collector.num_envs=2"]
    temporary = tmp_path / "temporary"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    args = agent_vs_sb3.parse_args(
        ["--env-steps=1010", "--eval-every=2000", "--case=duet", "--seed=0"]
        + [f"--duet-set={setting}" for setting in settings]
    )
    assert args.duet_set == settings and args.learners == ["duet", "sb3"]
    model = agent_vs_sb3.train_duet(args, agent_vs_sb3.EvaluationClock(every=2000, episodes=1))
    assert model.trainer.datamodule.hparams.batch_size == 32
    collector = next(c for c in model.trainer.callbacks if hasattr(c, "num_envs"))
    assert collector.num_envs == 2 and collector.env_steps == 1010
    assert not list(temporary.glob("agent_vs_sb3_*")), "its logs were left behind"


def test_run_in_subprocess_repeats_the_flag_of_a_list_value(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from common import run_in_subprocess

    script = tmp_path / "echo_args.py"
    script.write_text("import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    given = run_in_subprocess(str(script), {"seed": 3, "duet_set": ["a=1", "b=2"], "none": []})
    assert given == ["--seed", "3", "--duet-set", "a=1", "--duet-set", "b=2"]


@pytest.mark.slow  # four processes; on a CPU it moves no checkpoint between devices
def test_device_round_trip_resumes_and_samples_on_the_cpu(mnist_dir, tmp_path):
    # On the CPU both ways here; on a GPU machine the first fit runs there (--accelerator gpu).
    (result,), _ = run(
        "device_round_trip.py",
        tmp_path,
        f"--data-dir={mnist_dir}",
        "--configs=gan",
        "--precisions=32-true",
        "--iterations=3",
        "--resume-iterations=2",
        "--accelerator=cpu",
        "--threads=1",
        f"--out={tmp_path / 'runs'}",
    )
    assert result["gpu_checkpoint"]["global_step"] == 3
    assert result["cpu_checkpoint"]["global_step"] == 5  # resumed, not started again
    assert result["gpu_checkpoint"]["finite"] and result["cpu_checkpoint"]["finite"]
    assert result["gpu_losses_logged"] == 3 * 2 and result["gpu_losses_finite"]  # d and g
    assert (tmp_path / "runs" / "gan_32-true" / "samples.png").stat().st_size > 1000
