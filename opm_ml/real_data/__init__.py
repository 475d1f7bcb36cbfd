"""Real public project datasets and published baselines for an honest "evaluate on real data".

`load_real_datasets()` maps each dataset in ../shared/data/real onto the data contract,
`evaluate()` cross-validates estimators on one of them and `benchmark_real_data()` runs the
baselines (ATLM, mean/median, no-change, reference class) on all of them.
"""

from opm_ml.real_data.baselines import (
    ATLM,
    CurrentEstimate,
    MeanEstimator,
    MedianEstimator,
    NoChange,
    ReferenceClassUplift,
)
from opm_ml.real_data.dataset import HOURS_PER_PERSON_MONTH, RealDataset, default_root
from opm_ml.real_data.evaluation import (
    benchmark_real_data,
    cv_splits,
    default_estimators,
    evaluate,
    mae_p0,
    standardised_accuracy,
)
from opm_ml.real_data.loader import ADAPTERS, LoadedDatasets, load_real_datasets

__all__ = [
    "ADAPTERS",
    "ATLM",
    "HOURS_PER_PERSON_MONTH",
    "CurrentEstimate",
    "LoadedDatasets",
    "MeanEstimator",
    "MedianEstimator",
    "NoChange",
    "RealDataset",
    "ReferenceClassUplift",
    "benchmark_real_data",
    "cv_splits",
    "default_estimators",
    "default_root",
    "evaluate",
    "load_real_datasets",
    "mae_p0",
    "standardised_accuracy",
]
