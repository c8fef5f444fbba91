"""CDK constructs and stack of the S3 Encryption Drift Monitor."""
