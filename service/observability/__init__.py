"""Operations: Prometheus metrics, OpenTelemetry traces and JSON logs with request ids.

``install_observability(app, settings)`` (:mod:`service.observability.install`) is all the application
factory calls; the CLI calls ``configure_logging`` (:mod:`~service.observability.logs`) and
``configure_tracing`` (:mod:`~service.observability.tracing`) once per process. Nothing here records
document or query text: only identifiers, counts, sizes, durations and route templates.

This package's ``__init__`` imports nothing: the audit code reads request ids from
:mod:`~service.observability.logs` without pulling in the metrics route and its authentication.
"""
