"""`duet sweep`'s report: the table and the learning-curve pictures from finished runs."""

import json

from duet.scripts import sweep_actenv


def test_a_sweep_reports_finished_runs_even_without_an_evaluation(tmp_path):
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(
        "env_steps: 1300\nthreshold: 475\nseeds: [0, 1]\n"
        "variants:\n  solved: {config: configs/actenv_cartpole_solved.yaml}\n"
    )
    curves = [
        {"greedy": [[500.0, 120.0], [1000.0, 480.0]], "training": [[600.0, 30.0]]},
        {"greedy": [], "training": []},  # a budget that ends before the first evaluation
    ]
    for seed, curve in enumerate(curves):
        run = tmp_path / "runs" / "solved" / f"seed_{seed}" / "run"
        run.mkdir(parents=True)
        result = {"variant": "solved", "seed": seed, "wall_s": 1.0, "curves": curve}
        result |= {"steps_to_threshold": 1000 if seed == 0 else None, "final_step": 300}
        result |= {"final_mean": 480.0 - 470 * seed, "final_std": 0.0, "final_min": 480.0}
        (run / "result.json").write_text(json.dumps(result))
    args = [str(sweep), "--out", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs")]
    assert sweep_actenv.main([*args, "--report-only"], prog="duet sweep") == 0
    report = (tmp_path / "docs" / "sweep_tiny.md").read_text()
    assert report.startswith("# Sweep: ") and "`duet sweep " in report
    assert "| solved | 1/2 |" in report  # one of the two seeds ends ≥ 475
    assert (tmp_path / "docs" / "sweep_tiny_solved.png").read_bytes()[:4] == b"\x89PNG"
