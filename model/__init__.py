"""The contract shared by training and serving: feature schema, fitted feature spec, bundle layout.

It depends on numpy, pydantic and boto3 only, and imports neither training nor transformer code.
"""
