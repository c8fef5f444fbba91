"""Entry points: the Lambda handlers (parse the event at the edge, wire the adapters,
delegate), with the notifier and telemetry only they use."""
