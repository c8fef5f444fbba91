"""The domain: models, policy, evaluation, lifecycle decisions and alert content. Pure:
no AWS SDK, no I/O, no clock read (imports only the standard library and each other)."""
