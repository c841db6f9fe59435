"""bench/calibrate_proof.py on the shipped realdup-dev: the proof's threshold lies between every true pair and every
distinct look-alike (the script's exit status says so), and the numbers it prints are the README's."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "calibrate_proof.py"


def test_the_threshold_separates_true_pairs_from_distinct_look_alikes(capsys) -> None:
    module = load_script(SCRIPT, "calibrate_proof")
    assert module.main([]) == 0
    out = capsys.readouterr().out
    highest = float(re.search(r"highest residual of a true pair: ([0-9.]+)", out).group(1))
    lowest = float(re.search(r"lowest residual of a distinct pair: ([0-9.]+)", out).group(1))
    assert highest <= 0.75 < lowest and lowest >= 0.95  # the margin the README quotes
    assert "adjacent_z_slice" in out and "overlapping_neighbour_field" in out
    assert module.main(["--max-residual", "0.5"]) == 1  # a threshold below some true pairs is reported as such
