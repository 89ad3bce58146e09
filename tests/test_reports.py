"""The report commands run end to end and write their files."""

import json

from sesn.cli import main


def test_equivariance_report_writes_tables_and_plot(tmp_path):
    rc = main(["report", "equivariance", "--out", str(tmp_path), "--configs", "mnist_ses_vector_28", "--size", "40", "--batch", "1", "--channels", "2"])
    assert rc == 0
    md = (tmp_path / "equivariance.md").read_text()
    assert "mnist_ses_vector_28" in md and "plain conv 7x7" in md and "SESN T->H basis D" in md and "SiCNN" in md
    for name in ("equivariance.csv", "equivariance_pairs.csv", "equivariance.png", "equivariance_methods.csv"):
        assert (tmp_path / name).stat().st_size > 0


def test_bench_report_from_a_pytest_benchmark_json(tmp_path):
    def bench(group, name, role, median, flops):
        return {"group": group, "name": name, "stats": {"median": median, "min": median, "rounds": 1},
                "extra_info": {"role": role, "variant": name, "pass": "fwd", "batch": 2, "params": 10, "flops": flops,
                               "peak_memory_bytes": 2**20, "device": "cpu (test)", "torch": "x", "case": "layer"}}  # fmt: skip

    data = {"benchmarks": [bench("g", "conv", "baseline", 0.01, 1e9), bench("g", "ses", "ses", 0.04, 4e9)], "machine_info": {}, "datetime": "now"}
    path = tmp_path / "out.json"
    path.write_text(json.dumps(data))
    assert main(["report", "bench", str(path), "--out", str(tmp_path / "r"), "--name", "t"]) == 0
    md = (tmp_path / "r" / "t.md").read_text()
    assert "| g | ses | 2 | 40.0 | 4.00 | 4.00 | 4.00 | 100 |" in md
    assert (tmp_path / "r" / "t.png").exists() and (tmp_path / "r" / "t.csv").exists()


def test_cli_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for cmd in ("report equivariance", "report methods", "report bench", "data mnist-scale", "reproduce", "train"):
        assert cmd in out
