"""Registry of the real-data adapters and `load_real_datasets`, which reports what it skipped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from opm_ml.real_data import eseur, little, nyc, promise, sip
from opm_ml.real_data.dataset import FAMILIES, Family, RealDataset, default_root

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adapter:
    """One dataset: its name, family and the function that builds it from the data folder."""

    name: str
    family: Family
    build: Callable[[Path], RealDataset]


ADAPTERS: tuple[Adapter, ...] = (
    Adapter("albrecht", "effort", promise.albrecht),
    Adapter("cocomo81", "effort", promise.cocomo81),
    Adapter("cosmic", "effort", promise.cosmic),
    Adapter("desharnais", "effort", promise.desharnais),
    Adapter("finnish", "effort", promise.finnish),
    Adapter("isbsg10", "effort", promise.isbsg10),
    Adapter("kemerer", "effort", promise.kemerer),
    Adapter("kitchenham", "effort", promise.kitchenham_effort),
    Adapter("miyazaki94", "effort", promise.miyazaki94),
    Adapter("nasa93", "effort", promise.nasa93),
    Adapter("ucp", "effort", promise.ucp),
    Adapter("huijgens_phd", "effort", eseur.huijgens_phd),
    Adapter("huijgens2013", "effort", eseur.huijgens2013),
    Adapter("kitchenham1985", "effort", eseur.kitchenham1985),
    Adapter("nasa_ada_fortran", "effort", eseur.nasa_ada_fortran),
    Adapter("ahonen2015", "effort", eseur.ahonen2015),
    Adapter("kitchenham_delay", "delay", promise.kitchenham_delay),
    Adapter("little_delay", "delay", little.little_delay),
    *(
        Adapter(f"little_delay_t{round(p * 100)}", "delay", partial(little.little_checkpoint,
                                                                     fraction=p))
        for p in little.CHECKPOINTS
    ),
    Adapter("nyc_delay", "delay", nyc.nyc_delay),
    Adapter("kitchenham_overrun", "overrun", promise.kitchenham_overrun),
    Adapter("jorgensen_overrun", "overrun", eseur.jorgensen_overrun),
    Adapter("sip_overrun", "overrun", sip.sip_overrun),
    Adapter("nyc_overrun", "overrun", nyc.nyc_overrun),
)

# Files in SOURCES.md that are deliberately not adapted, with the reason (reported as skipped).
NOT_ADAPTED: tuple[tuple[str, tuple[Family, ...], str], ...] = (
    ("sip_delay", ("delay",), sip.SIP_DELAY_SKIP_REASON),
    ("nasa93_dem", ("effort",), "same 93 projects as nasa93.arff; counting them twice would "
                                "double-weight NASA in the benchmark"),
    ("fed_IT_portfolio", ("effort", "overrun"), "failure cost is modelled (probability x cost), "
                                                "not an observed overrun; no effort column"),
    ("978052-fixed-price", ("overrun",), "only size and profit; no estimate vs actual pair"),
    ("proj-bidding", ("overrun",), "bid vs pre-bid price of 35 offers; no actual cost outcome"),
    ("renzo-all-tasks", ("effort", "overrun"), "one person's to-do items in 25-minute pomodoros, "
                                               "not project work"),
    ("skyscraper", ("delay",), "actual construction years only; no planned duration"),
)


class LoadedDatasets(list):
    """The loaded `RealDataset`s (a plain list) plus `skipped`: (name, reason) pairs."""

    def __init__(self, datasets: list[RealDataset], skipped: list[tuple[str, str]]):
        super().__init__(datasets)
        self.skipped = skipped


def load_real_datasets(
    root: Path | None = None, family: str | None = None, *, include_ex_post: bool = False
) -> LoadedDatasets:
    """Load every adaptable real dataset (optionally one family) from `root`.

    `root` defaults to `../shared/data/real` beside the repository. Ex-post features (actual
    durations, go-live years) are dropped unless `include_ex_post`; keep them only to compare
    with published benchmarks that used them. A dataset that cannot be built is skipped and
    listed in `.skipped` with the reason (and logged), never dropped silently.
    """
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        raise FileNotFoundError(
            f"real data folder not found: {root} (expected ../shared/data/real beside the "
            "repository; pass root=...)"
        )
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    datasets: list[RealDataset] = []
    skipped = [(name, reason) for name, families, reason in NOT_ADAPTED
               if family is None or family in families]
    for adapter in ADAPTERS:
        if family is not None and adapter.family != family:
            continue
        try:
            dataset = adapter.build(root)
        except (OSError, ValueError, KeyError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("real data: cannot adapt %s: %s", adapter.name, reason)
            skipped.append((adapter.name, reason))
            continue
        datasets.append(dataset if include_ex_post else dataset.without_ex_post())
    return LoadedDatasets(datasets, skipped)
