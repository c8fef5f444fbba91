"""Adapters around the AWS SDK: credentials per account, S3, DynamoDB, SNS, SQS, KMS,
Organizations, tagging and the optional outputs. They turn AWS errors into the domain's."""
