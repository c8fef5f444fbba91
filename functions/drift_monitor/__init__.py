"""S3 Encryption Drift Monitor: the Lambda function's code (deployed as this folder's asset)."""
