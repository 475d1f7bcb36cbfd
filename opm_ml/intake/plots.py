"""Charts of a portfolio report: load vs capacity per role and month, and the frontier."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def plot_resource_load(load, path: Path | str) -> Path:
    """One panel per role: bars of selected load per month, capacity as a line."""
    roles = list(dict.fromkeys(load["role"]))
    fig, axes = plt.subplots(len(roles), 1, figsize=(10, 1.9 * len(roles)), sharex=True,
                             squeeze=False)
    for ax, role in zip(axes[:, 0], roles):
        rows = load[load["role"] == role]
        months = range(len(rows))
        over = rows["load_hours"] > rows["capacity_hours"] * 0.99
        ax.bar(months, rows["load_hours"], color=["#c0392b" if o else "#2e86c1" for o in over])
        ax.stairs(rows["capacity_hours"].to_numpy(), np.arange(len(rows) + 1) - 0.5,
                  color="black", lw=1, label="capacity")
        ax.set_ylabel(f"{role}\nhours")
    axes[-1, 0].set_xticks(range(len(rows)), rows["month"], rotation=90, fontsize=7)
    fig.suptitle("Selected portfolio: load per role and month (red: within 1 % of capacity)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_frontier(frontier, path: Path | str) -> Path:
    """Risk-adjusted value of the best portfolio against the total budget."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(frontier["budget_total"], frontier["total_value"], marker="o")
    for row in frontier.itertuples():
        ax.annotate(f"x{row.budget_scale:g}", (row.budget_total, row.total_value), fontsize=8,
                    textcoords="offset points", xytext=(4, -10))
    ax.set_xlabel("total budget over the horizon")
    ax.set_ylabel("risk-adjusted value selected")
    ax.set_title("Efficient frontier")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
