"""Every request and response body of the API, by area (pydantic v2).

* `common`: errors, health, model references and `/v1/models`;
* `projects`: the project request, generated from the served models' feature manifest;
* `forecasts`: forecasts, explanations and assessments;
* `evm`: the OPM metrics endpoint;
* `intake`: intake scoring and portfolio selection;
* `dashboard`: the planner dashboard's JSON;
* `schedules`: schedule checks and Monte Carlo risk analyses of uploaded P6/MS Project files.
"""
