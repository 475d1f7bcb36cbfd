"""Real-data benchmark: our model families vs published baselines, printed as Markdown tables.

Run by hand (about a minute on 2 cores): `.venv/bin/python benchmarks/real_data.py [repeats]`.
The same numbers as `opm-ml evaluate-real`, in the form pasted into the README.
"""

import sys
import time
from pathlib import Path

# The repo root must win over this folder: benchmarks/training.py would shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.real_data import LEGEND, evaluate_real, family_tables  # noqa: E402


def main(repeats: int = 10) -> None:
    started = time.perf_counter()
    result = evaluate_real(n_repeats=repeats)
    for family, table in family_tables(result).items():
        print(f"\n#### {family} (SA % / MdAE, out of fold)\n")
        print("| dataset | " + " | ".join(table.columns) + " |")
        print("|---" * (len(table.columns) + 1) + "|")
        for dataset, row in table.iterrows():
            print(f"| {dataset} | " + " | ".join(row.tolist()) + " |")
    wins = result.loc[result.groupby("dataset")["SA"].idxmax(), "estimator"]
    print(f"\n{LEGEND}.")
    print(f"\nopm has the best SA on {(wins == 'opm').sum()} of {wins.size} datasets; "
          f"{repeats} repeats, {time.perf_counter() - started:.0f} s.")
    for name, reason in result.attrs["skipped"]:
        print(f"- skipped {name}: {reason}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
