"""opm-ml core library: the data contract, validation, synthetic history, features, OPM metrics,
intake scoring and model loading shared by `training/` and `serving/`."""

__version__ = "0.1.0"
