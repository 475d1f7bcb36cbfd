"""Dataset profiles: how an organisation's own project history maps onto what the models need.

The built-in `contract` profile is opm-ml's synthetic data contract (`opm_ml.profiles.contract`).
"""
