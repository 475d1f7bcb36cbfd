"""MLflow logging: experiment set-up, lineage (git commit, dataset digests), plots, the model.

Everything needed to reproduce a run is logged with it: the git commit (and whether the tree
was dirty), the model spec file, the seed and hyper-parameters, and every input table as an
`mlflow.data` dataset (source path + content digest). Plots are matplotlib figures (Agg) with
titles, units and labelled axes, logged with `mlflow.log_figure`.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from opm_ml import mlflow_access  # noqa: E402
from opm_ml.csv_safety import write_csv  # noqa: E402
from opm_ml.features import build_features  # noqa: E402
from opm_ml.forecasting import pyfunc  # noqa: E402
from opm_ml.settings import PROJECT_ROOT, Settings  # noqa: E402

log = logging.getLogger("opm_ml.training")
PLOT_ROWS = 2000  # SHAP/residual plots use a sample: enough to see the shape, fast to draw
_REQUIREMENTS = ("mlflow", "lightgbm", "scikit-learn", "pandas", "numpy", "scipy", "joblib",
                 "pydantic", "pydantic-settings", "pyarrow")


def setup_experiment(settings: Settings) -> str:
    """Create the experiment in the settings' store if new, and return its id.

    A store this process opens itself keeps artifacts in `mlflow_artifact_root`; on a tracking
    server the server's artifact store gets them, so every API replica can load the models.
    """
    client = mlflow_access.client(settings)
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    if experiment is not None:
        if is_tracking_server(settings.mlflow_tracking_uri) and \
                experiment.artifact_location.startswith("file:"):
            log.warning("experiment %r on %s keeps artifacts on one machine's disk (%s): other "
                        "machines cannot load its models; use a new OPM_ML_MLFLOW_EXPERIMENT",
                        experiment.name, settings.mlflow_tracking_uri,
                        experiment.artifact_location)
        return experiment.experiment_id
    if is_tracking_server(settings.mlflow_tracking_uri):
        # No location: the server picks its own (mlflow-artifacts:/ with --serve-artifacts).
        return client.create_experiment(settings.mlflow_experiment)
    root = Path(settings.mlflow_artifact_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(settings.mlflow_experiment, artifact_location=root.as_uri())


def is_tracking_server(uri: str) -> bool:
    """Whether MLflow reaches the store through a tracking server (HTTP) rather than opening it."""
    return uri.split(":", 1)[0].lower() in ("http", "https")


def git_tags() -> dict[str, str]:
    """Commit and dirty flag of the project's git tree ("unknown" outside a repository)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True,
                                  text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return {"mlflow.source.git.commit": commit or "unknown",
            "git_commit": commit or "unknown",
            "git_dirty": "unknown" if status is None else str(bool(status)).lower()}


def log_dataset(frame: pd.DataFrame, name: str, source: str, context: str) -> str:
    """Log a table as an mlflow.data dataset (lineage with digest); returns the digest.

    `source` is the history folder; anything else (in-memory data) is logged without a path.
    """
    path = source if source and Path(source).exists() else None
    plain = _plain(frame)
    with warnings.catch_warnings():
        # MLflow warns that a path source "can be interpreted in multiple ways" (both local).
        warnings.simplefilter("ignore")
        dataset = mlflow.data.from_pandas(plain, source=path, name=name,
                                          digest=content_digest(frame))
        # MLflow infers the schema from every value (~10 s for 2 M snapshots); a sample has
        # the same column types. `schema` is a cached_property: setting it skips the scan.
        dataset.__dict__["schema"] = mlflow.data.from_pandas(plain.head(1000), digest="-").schema
        mlflow.log_input(dataset, context=context)
    return dataset.digest


def content_digest(frame: pd.DataFrame) -> str:
    """Hash of every row and column (MLflow's own digest only samples the first rows)."""
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    header = "|".join(map(str, frame.columns)).encode()
    return hashlib.sha256(header + rows.tobytes()).hexdigest()[:16]


def log_rejections(rejections: pd.DataFrame) -> None:
    """The rejected-rows report (table, row, column, value, reason) as a CSV artifact."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rejected_rows.csv"
        write_csv(rejections, path, index=False)  # echoes raw cells: formula-safe
        mlflow.log_artifact(str(path))


def log_family_model(model, example_rows: pd.DataFrame):
    """Log the family's pyfunc (models-from-code, the fitted model as a joblib artifact) with
    its signature, input example and manifest; returns MLflow's ModelInfo."""
    example = example_rows.reset_index(drop=True)
    output = model.predict(example).to_frame()
    mlflow.log_dict(model.manifest.to_dict(), "manifest.json")
    return log_pyfunc(model, pyfunc.MODEL_ARTIFACT, pyfunc.CODE_FILE,
                      pyfunc.signature(model.manifest, output), example)


def log_pyfunc(model, artifact: str, code_file: Path, signature, example: pd.DataFrame):
    """Log a models-from-code pyfunc whose `code_file` reads the fitted `model` from the
    joblib artifact `artifact`, with its signature, input example and pinned requirements."""
    import joblib

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{artifact}.joblib"
        joblib.dump(model, path)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code_file),
            artifacts={artifact: str(path)},
            signature=signature,
            input_example=example,
            pip_requirements=[f"{p}=={version(p)}" for p in _REQUIREMENTS],
        )


def log_reference(model, data, evaluation) -> None:
    """Attach to `model` the profile of its training features and held-out forecasts that
    monitoring measures drift against (it travels in the model file), and log it as JSON."""
    from opm_ml.monitoring.reference import build_reference

    tests = {"intake": data.intake.test, "inflight": data.inflight.test}
    model.reference = build_reference(
        model, {"intake": data.intake.train, "inflight": data.inflight.train},
        {stage: (tests[stage], out) for stage, out in evaluation.predictions.items()})
    mlflow.log_dict(model.reference.to_dict(), "reference_profile.json")


def stage_features(model, stage: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The model's feature frame of `stage` for raw rows (categories as pandas categoricals)."""
    return build_features(frame, stage, model.manifest)[model.stage_features(stage)]


def shap_summary_figure(contrib: np.ndarray, X: pd.DataFrame, title: str):
    """SHAP beeswarm of the P50 model (categories shown by their contract code)."""
    import shap

    shown = X.copy()
    for col in shown.columns:
        if isinstance(shown[col].dtype, pd.CategoricalDtype):
            shown[col] = shown[col].cat.codes.astype(float)
    shap.summary_plot(contrib[:, :-1], shown, max_display=15, show=False, plot_size=(9, 7))
    fig = plt.gcf()
    fig.axes[0].set_title(title)
    fig.axes[0].set_xlabel("SHAP value (impact on log(actual / planned))")
    fig.tight_layout()
    return fig


def importance_figure(booster, title: str, top: int = 20):
    gain = pd.Series(booster.feature_importance("gain"), index=booster.feature_name())
    gain = gain.sort_values().tail(top)
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(gain) + 1.5))
    ax.barh(gain.index, gain.to_numpy() / gain.sum() * 100)
    ax.set_xlabel("share of total split gain (%)")
    ax.set_ylabel("feature")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def residual_figure(parts: dict[str, tuple[np.ndarray, np.ndarray]], title: str, unit: str):
    """Residual (log actual - log P50) against the P50 forecast, one colour per stage."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for stage, (pred, actual) in parts.items():
        keep = sample(len(pred))
        ax.scatter(pred[keep], np.log(actual[keep]) - np.log(pred[keep]), s=6, alpha=0.4,
                   label=stage)
    ax.axhline(0, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel(f"P50 forecast ({unit}, log scale)")
    ax.set_ylabel("residual: log(actual / P50)")
    ax.set_title(title)
    ax.legend(title="stage")
    fig.tight_layout()
    return fig


def calibration_figure(parts: dict[str, tuple[np.ndarray, np.ndarray]], title: str):
    """Reliability curve of P(late): observed late share against the forecast, per stage."""
    from sklearn.calibration import calibration_curve

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    for stage, (y, p) in parts.items():
        observed, forecast = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(forecast, observed, marker="o", label=stage)
    ax.set_xlabel("forecast probability of finishing late")
    ax.set_ylabel("observed share of late projects")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def log_figure(fig, name: str) -> None:
    mlflow.log_figure(fig, name)
    plt.close(fig)


def sample(n: int) -> np.ndarray:
    return np.random.default_rng(0).permutation(n)[:PLOT_ROWS]


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Dataset schema inference wants plain dtypes: text as object, nullable numbers as float."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_string_dtype(out[col]) and not pd.api.types.is_object_dtype(out[col]):
            out[col] = out[col].astype(object)
        elif pd.api.types.is_extension_array_dtype(out[col]) and pd.api.types.is_numeric_dtype(
                out[col]):
            out[col] = out[col].astype("float64")
    return out
