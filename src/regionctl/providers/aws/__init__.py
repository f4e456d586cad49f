"""The AWS provider: ARC, Aurora global databases (Aurora PostgreSQL), snapshots, ECS, with boto3.

boto3 is an optional dependency (``pip install 'regionctl[aws]'``); nothing here is imported unless
``provider = "aws"``. Credentials come from boto3's standard chain and never pass through our code.
"""
